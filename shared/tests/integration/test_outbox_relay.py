"""The outbox reaches Kafka exactly once for committed work and never for rolled-back work."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, text

from siyu_devstack.testing import Scratch, eventually, read_topic
from siyu_shared.events.catalog import GroupJoined
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import envelope
from siyu_shared.messaging.outbox import (
    SerializedEvent,
    add_serialized_to_outbox,
    add_to_outbox,
    serialized_insert_sql,
    serialized_params,
)
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
    # CloudEvents Kafka binding, structured mode, with the headers the AsyncAPI document declares.
    by_id = {e.id: e for e in committed}
    for _, value, headers in messages:
        event = by_id[orjson.loads(value)["id"]]
        assert headers == {
            "content-type": b"application/cloudevents+json",
            "ce_id": event.id.encode(),
            "ce_type": b"siyu.group.joined",
            "ce_tenant": b"glowlab",
        }


def serialized(event: CloudEvent, ref: str | None = None) -> SerializedEvent:
    return SerializedEvent(event.id, event.type, event.tenant, event.subject, event.to_json(), ref=ref)


async def _outbox_rows(scratch: Scratch) -> dict[str, tuple[object, ...]]:
    columns = ("topic", "key", "event_type", "tenant", "payload", "headers", "published_at")
    async with scratch.sessions() as session:
        rows = await session.execute(select(outbox_table.c.event_id, *(outbox_table.c[c] for c in columns)))
        return {r[0]: tuple(r[1:]) for r in rows}


async def test_serialized_events_are_queued_as_add_to_outbox_queues_them(scratch: Scratch) -> None:
    by_model, by_bytes = [joined("p1"), joined("p2")], [joined("p1"), joined("p3")]
    async with scratch.sessions() as session, session.begin():
        await add_to_outbox(session, by_model, topics=scratch.topics)
        await add_serialized_to_outbox(session, [serialized(e) for e in by_bytes], topics=scratch.topics)
        # An id already queued is ignored, either way.
        await add_serialized_to_outbox(
            session, [serialized(by_model[0]), serialized(by_bytes[0])], topics=scratch.topics
        )
    rows = await _outbox_rows(scratch)
    assert set(rows) == {e.id for e in by_model + by_bytes}
    topic = scratch.topics.name(GroupJoined.topic)
    headers = {"ce_type": "siyu.group.joined", "ce_tenant": "glowlab"}
    for event in by_model + by_bytes:
        assert rows[event.id] == (topic, event.subject, event.type, "glowlab", event.to_json(), headers, None)


async def test_serialized_insert_composes_with_a_statement_that_queues_only_what_it_inserted(scratch: Scratch) -> None:
    """``only``: in one statement, the events of the rows a CTE actually inserted (an effect already there has
    none)."""
    async with scratch.sessions() as session, session.begin():
        await session.execute(text("INSERT INTO effects (event_id, person_id) VALUES ('e-old', 'p1')"))
    events = {"e-old": joined("p1"), "e-new": joined("p2")}
    statement = text(
        "WITH inserted AS ("
        "  INSERT INTO effects (event_id, person_id)"
        "  SELECT e, 'p' FROM unnest(CAST(:effects AS text[])) AS u(e)"
        "  WHERE NOT EXISTS (SELECT 1 FROM effects x WHERE x.event_id = u.e) RETURNING event_id"
        f"), queued AS ({serialized_insert_sql(only='v.ref IN (SELECT event_id FROM inserted)')})"
        " SELECT event_id FROM inserted"
    )
    async with scratch.sessions() as session, session.begin():
        params = serialized_params([serialized(e, ref=k) for k, e in events.items()], topics=scratch.topics)
        done = await session.execute(statement, {"effects": list(events), **params})
        assert list(done.scalars()) == ["e-new"]
    assert set(await _outbox_rows(scratch)) == {events["e-new"].id}


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
