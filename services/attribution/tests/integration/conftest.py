from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from siyu_devstack.stack import Stack
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import EventData, envelope, spec_of
from siyu_shared.events.topics import TopicNames


@dataclass
class FakeClock:
    """The service's clock in a test: moves only when the test says so."""

    now: datetime = datetime(2026, 10, 3, 6, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Upstream:
    """Plays the other services: puts their events on this test's topics."""

    producer: AIOKafkaProducer
    topics: TopicNames
    tenant: str

    async def send(self, data: EventData, *, person: str, event_id: str | None = None) -> CloudEvent:
        event = envelope(data, tenant=self.tenant, subject=person, source="/test/upstream", event_id=event_id)
        await self.resend([event])
        return event

    async def resend(self, events: Iterable[CloudEvent]) -> None:
        for event in events:
            topic = self.topics.name(spec_of(event.type).topic)
            await self.producer.send_and_wait(topic, value=event.to_json(), key=event.key)


@pytest.fixture
async def producer(migrated: Stack) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=migrated.bootstrap_servers, enable_idempotence=True)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
