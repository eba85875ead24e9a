"""Helpers for the segmentation integration tests: produce upstream events, read what segmentation emitted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import func, select

from siyu_devstack.stack import Stack
from siyu_devstack.testing import running_service
from siyu_segmentation.adapters.tables import backfills, inbox, outbox
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import unit_of_work
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import EventData, envelope
from siyu_shared.events.topics import TopicNames


@dataclass
class Harness:
    app: FastAPI
    http: httpx.AsyncClient
    producer: AIOKafkaProducer
    topics: TopicNames
    tenant: str
    headers: dict[str, str]
    bootstrap: str

    @property
    def sessions(self) -> Any:
        return self.app.state.runtime.sessions

    async def send(self, data: EventData, *, event_id: str | None = None) -> CloudEvent:
        person = str(getattr(data, "person_id", None) or data.survivor_id)
        event = envelope(data, tenant=self.tenant, subject=person, source="/test/upstream", event_id=event_id)
        await self.producer.send_and_wait(self.topics.name(data.topic), value=event.to_json(), key=event.key)
        return event

    async def handled(self, *events: CloudEvent) -> bool:
        ids = [e.id for e in events]
        async with self.sessions() as session:
            done = await session.scalar(select(func.count()).where(inbox.c.event_id.in_(ids)))
        return done == len(set(ids))

    async def tag_events(self, person_id: str | None = None) -> list[dict[str, Any]]:
        """The tags.changed events segmentation queued for this tenant (outbox order), as payloads."""
        async with self.sessions() as session:
            query = select(outbox.c.payload).where(outbox.c.tenant == self.tenant).order_by(outbox.c.id)
            if person_id is not None:
                query = query.where(outbox.c.key == person_id)
            rows = (await session.execute(query)).scalars().all()
        return [orjson.loads(r) for r in rows]

    async def backfill_done(self, job_id: int) -> dict[str, Any] | None:
        async with self.sessions() as session:
            row = (await session.execute(select(backfills).where(backfills.c.id == job_id))).mappings().first()
        return dict(row) if row is not None and row["status"] in ("done", "cancelled", "failed") else None

    async def put(self, path: str, body: dict[str, Any]) -> Any:
        response = await self.http.put(path, json=body, headers=self.headers)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


@asynccontextmanager
async def harness(stack: Stack, topic_prefix: str, **overrides: Any) -> AsyncIterator[Harness]:
    overrides.setdefault("backfill_poll_s", 0.2)
    async with running_service("segmentation", stack, topic_prefix=topic_prefix, **overrides) as (app, http):
        tenant = f"t{uuid4().hex[:8]}"
        async with unit_of_work(app.state.runtime.sessions) as session:
            key = await issue_key(session, tenant=tenant, scopes=("admin",), name="test")
        producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap_servers)
        await producer.start()
        try:
            yield Harness(
                app,
                http,
                producer,
                TopicNames(topic_prefix),
                tenant,
                {"X-API-Key": key.plaintext},
                stack.bootstrap_servers,
            )
        finally:
            await producer.stop()


def ts(value: datetime | None = None) -> datetime:
    return value or datetime.now(UTC)


def pid() -> str:
    return f"p{uuid4().hex[:10]}"
