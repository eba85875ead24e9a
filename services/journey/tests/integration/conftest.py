"""Fixtures for the journey service against the real stack: a controllable clock, the service in-process,
an API key, and a producer for the upstream events (ingest and segmentation are not needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import func, select

from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually, read_topic, running_service, service_spec
from siyu_journey.adapters.tables import sandbox_deliveries, touches
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import unit_of_work
from siyu_shared.db.migrate import upgrade
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import EventData, envelope
from siyu_shared.events.topics import Topic, TopicNames

MONDAY_10_SHANGHAI = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = MONDAY_10_SHANGHAI) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Harness:
    stack: Stack
    topic_prefix: str
    tenant: str
    clock: FakeClock
    producer: AIOKafkaProducer
    app: FastAPI | None = None
    http: httpx.AsyncClient | None = None
    key: str = ""

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.topic_prefix)

    def service(self, **overrides: Any) -> AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]:
        return running_service(
            "journey",
            self.stack,
            topic_prefix=self.topic_prefix,
            clock=self.clock,
            timer_poll_s=0.05,
            **overrides,
        )

    def bind(self, app: FastAPI, http: httpx.AsyncClient) -> None:
        self.app, self.http = app, http

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def issue_key(self) -> None:
        assert self.app is not None
        async with unit_of_work(self.app.state.runtime.sessions) as session:
            self.key = (await issue_key(session, tenant=self.tenant, scopes=("admin",), name="test")).plaintext

    async def publish_journey(self, definition: dict[str, Any]) -> int:
        assert self.http is not None
        made = await self.http.post("/v1/journeys", json=definition, headers=self.headers)
        assert made.status_code == 201, made.text
        version = int(made.json()["version"])
        done = await self.http.post(f"/v1/journeys/{definition['id']}/versions/{version}/publish", headers=self.headers)
        assert done.status_code == 200, done.text
        return version

    async def emit(self, data: EventData, *, subject: str, event_id: str | None = None) -> CloudEvent:
        event = envelope(data, tenant=self.tenant, subject=subject, source="/test", event_id=event_id)
        await self.producer.send_and_wait(self.topics.name(data.topic), value=event.to_json(), key=event.key)
        return event

    async def history(self, person_id: str) -> dict[str, Any]:
        assert self.http is not None
        response = await self.http.get(f"/v1/persons/{person_id}/journeys", headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def touch_statuses(self, person_id: str) -> list[tuple[str, str, str | None]]:
        return [(t["step_id"], t["status"], t["reason"]) for t in (await self.history(person_id))["touches"]]

    async def deliveries(self, person_id: str) -> int:
        assert self.app is not None
        async with unit_of_work(self.app.state.runtime.sessions) as session:
            return int(
                await session.scalar(
                    select(func.count()).where(
                        sandbox_deliveries.c.tenant == self.tenant, sandbox_deliveries.c.person_id == person_id
                    )
                )
                or 0
            )

    async def touch_count(self) -> int:
        assert self.app is not None
        async with unit_of_work(self.app.state.runtime.sessions) as session:
            return int(await session.scalar(select(func.count()).where(touches.c.tenant == self.tenant)) or 0)

    async def events_of(self, person_id: str) -> list[dict[str, Any]]:
        """This person's touches.v1 events, once at least one was published (the relay runs after the commit)."""

        async def published() -> list[dict[str, Any]]:
            return [e for e in await self.touch_events() if e["person_id"] == person_id]

        return await eventually(published)

    async def touch_events(self) -> list[dict[str, Any]]:
        messages = await read_topic(self.stack.bootstrap_servers, self.topics.name(Topic.TOUCHES), idle_s=0.5)
        events = [CloudEvent.from_json(value) for _, value, _ in messages]
        return [{"type": e.type, "tenant": e.tenant, **e.data} for e in events if e.tenant == self.tenant]


@pytest.fixture(scope="session")
async def journey_migrated(stack: Stack) -> Stack:
    """The stack with the journey schema migrated. Like the shared ``migrated`` fixture but for this service only,
    so these tests do not depend on the other services' migrations (built in parallel) importing cleanly."""
    spec = service_spec("journey", stack)
    await asyncio.to_thread(upgrade, migrations=spec.migrations, url=spec.settings.database_url, schema=spec.schema)
    return stack


@pytest.fixture
async def harness(journey_migrated: Stack, topic_prefix: str) -> AsyncIterator[Harness]:
    migrated = journey_migrated
    producer = AIOKafkaProducer(bootstrap_servers=migrated.bootstrap_servers, enable_idempotence=True)
    await producer.start()
    try:
        yield Harness(migrated, topic_prefix, f"t{uuid4().hex[:8]}", FakeClock(), producer)
    finally:
        await producer.stop()


def person() -> str:
    return f"p{uuid4().hex[:10]}"
