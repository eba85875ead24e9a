"""/readyz follows the database and Kafka: not ready while either is down, ready again when it returns.

Runs on a private stack (its own Postgres and Kafka) so stopping them does not disturb the other tests.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually
from siyu_ingest.bootstrap import build_spec
from siyu_shared.app import create_app

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(os.environ.get("DATABASE_URL") or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")),
        reason="needs servers it may stop: runs only on stacks the project starts itself",
    ),
]


@pytest.fixture
async def private_stack() -> AsyncIterator[Stack]:
    stack = Stack(fast=True, partitions=1)
    await asyncio.to_thread(stack.start)
    try:
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)


async def test_readyz_reports_each_outage_and_recovers(private_stack: Stack) -> None:
    stack = private_stack
    assert stack.postgres is not None and stack.kafka is not None
    spec = build_spec(
        database_url=stack.service_dsn("ingest"),
        kafka_bootstrap_servers=stack.bootstrap_servers,
        readiness_timeout_s=1.5,
    )
    app = create_app(spec, role="api")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):

        async def ready_state() -> tuple[int, dict[str, str]]:
            reply = await http.get("/readyz")
            return reply.status_code, reply.json()["checks"]

        assert await ready_state() == (200, {"database": "ok", "kafka": "ok"})

        await asyncio.to_thread(stack.postgres.stop)
        status, checks = await ready_state()
        assert status == 503
        assert checks["database"] != "ok" and checks["kafka"] == "ok"
        await asyncio.to_thread(stack.postgres.start)
        await eventually(lambda: _is_ready(ready_state), timeout_s=15)

        await asyncio.to_thread(stack.kafka.stop)
        status, checks = await ready_state()
        assert status == 503
        assert checks["kafka"] != "ok" and checks["database"] == "ok"
        await asyncio.to_thread(stack.kafka.start)
        await eventually(lambda: _is_ready(ready_state), timeout_s=30)


async def _is_ready(probe) -> bool:  # type: ignore[no-untyped-def]
    status, _ = await probe()
    return bool(status == 200)
