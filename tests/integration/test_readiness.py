"""/readyz follows what the role needs (api: the database; worker: the database and Kafka): not ready while one
of those is down, ready again when it returns.

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


async def test_readyz_reports_each_outage_a_role_needs_and_recovers(private_stack: Stack) -> None:
    """The api role (the front door) needs the database only: a Kafka outage keeps it ready, since what it accepts
    is stored and the worker's outbox relay publishes it later. The worker needs both."""
    stack = private_stack
    assert stack.postgres is not None and stack.kafka is not None
    spec = build_spec(
        database_url=stack.service_dsn("ingest"),
        kafka_bootstrap_servers=stack.bootstrap_servers,
        readiness_timeout_s=1.5,
    )
    api, worker = create_app(spec, role="api"), create_app(spec, role="worker")
    async with (
        api.router.lifespan_context(api),
        worker.router.lifespan_context(worker),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://api") as api_http,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=worker), base_url="http://worker") as worker_http,
    ):

        async def api_state() -> tuple[int, dict[str, str]]:
            reply = await api_http.get("/readyz")
            return reply.status_code, reply.json()["checks"]

        async def worker_state() -> tuple[int, dict[str, str]]:
            reply = await worker_http.get("/readyz")
            return reply.status_code, reply.json()["checks"]

        assert await api_state() == (200, {"database": "ok"})
        assert await worker_state() == (200, {"database": "ok", "kafka": "ok"})

        await asyncio.to_thread(stack.postgres.stop)
        for state in (api_state, worker_state):
            status, checks = await state()
            assert status == 503
            assert checks["database"] != "ok" and checks.get("kafka", "ok") == "ok"
        await asyncio.to_thread(stack.postgres.start)
        await eventually(lambda: _is_ready(api_state), timeout_s=15)
        await eventually(lambda: _is_ready(worker_state), timeout_s=15)

        await asyncio.to_thread(stack.kafka.stop)
        assert await api_state() == (200, {"database": "ok"})  # the front door stays in its Service
        status, checks = await worker_state()
        assert status == 503
        assert checks["kafka"] != "ok" and checks["database"] == "ok"
        await asyncio.to_thread(stack.kafka.start)
        await eventually(lambda: _is_ready(worker_state), timeout_s=30)


async def _is_ready(probe) -> bool:  # type: ignore[no-untyped-def]
    status, _ = await probe()
    return bool(status == 200)
