"""Ingest running in-process against the session's Postgres and Kafka, with every channel configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
import orjson
import pytest
from fastapi import FastAPI

from siyu_devstack.stack import Stack
from siyu_devstack.testing import read_topic, running_service
from siyu_ingest import samples
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import unit_of_work
from siyu_shared.events.topics import Topic, TopicNames


@dataclass
class Ingest:
    app: FastAPI
    http: httpx.AsyncClient
    tenant: str
    admin_key: str
    bootstrap: str
    topics: TopicNames

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    async def post(self, channel: str, signed: samples.Signed, *, tenant: str | None = None) -> httpx.Response:
        body, headers, query = signed
        return await self.http.post(
            f"/v1/webhooks/{tenant or self.tenant}/{channel}", content=body, headers=headers, params=query
        )

    async def events(self, topic: Topic) -> list[dict[str, Any]]:
        """The CloudEvents on ``topic`` of this test's tenant, in order."""
        messages = await read_topic(self.bootstrap, self.topics.name(topic), idle_s=0.6)
        out = [orjson.loads(value) for _, value, _ in messages]
        return [e for e in out if e["tenant"] == self.tenant]

    async def deliveries(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        response = await self.http.get(f"/v1/tenants/{self.tenant}/deliveries", params=params, headers=self.auth)
        assert response.status_code == 200, response.text
        out: list[dict[str, Any]] = response.json()
        return out

    async def settled(self) -> bool:
        """True when no delivery of the tenant is pending any more."""
        return not await self.deliveries("pending") and bool(await self.deliveries())


@pytest.fixture(scope="session")
async def migrated(stack: Stack) -> Stack:
    """Only ingest's migrations: this suite must not depend on the state of the other services' work."""
    import asyncio

    from siyu_devstack.testing import service_spec
    from siyu_shared.db.migrate import upgrade

    spec = service_spec("ingest", stack)
    await asyncio.to_thread(upgrade, migrations=spec.migrations, url=spec.settings.database_url, schema=spec.schema)
    return stack


@pytest.fixture
async def ingest(migrated: Stack, topic_prefix: str) -> AsyncIterator[Ingest]:
    tenant = f"t{uuid4().hex[:8]}"
    async with running_service(
        "ingest",
        migrated,
        topic_prefix=topic_prefix,
        worker_poll_interval_s=0.1,
        outbox_poll_interval_s=0.1,
        tmc_poll_interval_s=0.2,
    ) as (app, http):
        async with unit_of_work(app.state.runtime.sessions) as session:
            issued = await issue_key(session, tenant=tenant, scopes=("admin",), name="test admin")
        hub = Ingest(
            app=app,
            http=http,
            tenant=tenant,
            admin_key=issued.plaintext,
            bootstrap=migrated.bootstrap_servers,
            topics=TopicNames(topic_prefix),
        )
        for channel, creds in samples.CREDENTIALS.items():
            secret_fields = {k: v for k, v in creds.items() if isinstance(v, str)}
            options = {k: v for k, v in creds.items() if not isinstance(v, str)}
            response = await http.put(
                f"/v1/tenants/{tenant}/channels/{channel}",
                json={"secrets": secret_fields, "options": options},
                headers=hub.auth,
            )
            assert response.status_code == 200, response.text
        yield hub
