"""The outbox reaches Kafka exactly once for committed work and never for rolled-back work."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from siyu_devstack.testing import Scratch, eventually, read_topic
from siyu_shared.events.catalog import GroupJoined
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import envelope
from siyu_shared.messaging.outbox import add_to_outbox
from siyu_shared.messaging.relay import OutboxRelay, RelayConfig
from siyu_shared.messaging.tables import outbox_table

pytestmark = pytest.mark.integration


def joined(person: str) -> CloudEvent:
    data = GroupJoined(person_id=person, chat_id="wr_chat", join_scene=3, occurred_at=datetime.now(UTC))
    return envelope(data, tenant="glowlab", subject=person, source="/test")


def relay_for(scratch: Scratch, producer: AIOKafkaProducer, **kwargs: object) -> OutboxRelay:
    return OutboxRelay(
        config=RelayConfig(service="test", schema=scratch.schema, batch=100, poll_interval_s=0.2),
        engine=scratch.engine,
        producer=producer,
        database_url=scratch.url,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_committed_events_arrive_once_and_rolled_back_ones_never(
    scratch: Scratch, producer: AIOKafkaProducer
) -> None:
    committed = [joined("p1"), joined("p2"), joined("p1")]
    rolled_back = joined("p3")
    async with scratch.sessions() as session, session.begin():
        await add_to_outbox(session, committed, topics=scratch.topics)
    with pytest.raises(RuntimeError):
        async with scratch.sessions() as session, session.begin():
            await add_to_outbox(session, rolled_back, topics=scratch.topics)
            raise RuntimeError("the business change failed")
    # Re-adding an event with the same id (a retried unit of work) does not queue a copy.
    async with scratch.sessions() as session, session.begin():
        await add_to_outbox(session, committed[0], topics=scratch.topics)

    relay = relay_for(scratch, producer)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await eventually(lambda: _unpublished_is(scratch, 0))
        # A second relay running alongside publishes nothing twice.
        second = relay_for(scratch, producer)
        assert await second.publish_batch() == 0
    finally:
        stop.set()
        await task

    messages = await read_topic(scratch.bootstrap, scratch.topics.name(GroupJoined.topic))
    ids = [orjson.loads(value)["id"] for _, value, _ in messages]
    assert sorted(ids) == sorted(e.id for e in committed)
    assert rolled_back.id not in ids
    # Keyed by person, ordered as committed within the key.
    p1 = [orjson.loads(v)["id"] for k, v, _ in messages if k == b"p1"]
    assert p1 == [committed[0].id, committed[2].id]
    assert all(h["ce_type"] == b"siyu.group.joined" for _, _, h in messages)


async def test_relay_wakes_on_notify_without_waiting_for_the_poll(scratch: Scratch, producer: AIOKafkaProducer) -> None:
    relay = OutboxRelay(
        config=RelayConfig(service="test", schema=scratch.schema, batch=100, poll_interval_s=30.0),
        engine=scratch.engine,
        producer=producer,
        database_url=scratch.url,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(1.0)  # the relay is now idle, listening, with a 30 s poll
        async with scratch.sessions() as session, session.begin():
            await add_to_outbox(session, joined("p9"), topics=scratch.topics)
        # Published long before the 30 s poll would have fired: only the NOTIFY can have woken it.
        await eventually(lambda: _unpublished_is(scratch, 0), timeout_s=10)
    finally:
        stop.set()
        await task


async def _unpublished_is(scratch: Scratch, expected: int) -> bool:
    async with scratch.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(outbox_table).where(outbox_table.c.published_at.is_(None))
        )
    return count == expected
