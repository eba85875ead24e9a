"""The consumer runner: redeliveries have one effect, failing events go to the DLQ and come back on replay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from jsonschema import Draft7Validator
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_devstack.testing import Scratch, effects, eventually, read_topic
from siyu_shared.events.asyncapi import asyncapi_document
from siyu_shared.events.catalog import GroupJoined, OrderPaid
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import envelope
from siyu_shared.events.topics import Topic
from siyu_shared.kafka.clients import manual_commit_consumer
from siyu_shared.kafka.dlq import replay_dlq
from siyu_shared.kafka.runner import BatchHandling, ConsumerRunner, Received, RunnerConfig
from siyu_shared.messaging.outbox import add_to_outbox
from siyu_shared.messaging.relay import OutboxRelay, RelayConfig

pytestmark = pytest.mark.integration

GROUP = "test-group"


def joined(person: str) -> CloudEvent:
    data = GroupJoined(person_id=person, chat_id="wr_chat", join_scene=0, occurred_at=datetime.now(UTC))
    return envelope(data, tenant="glowlab", subject=person, source="/test")


async def record_effect(event: Received[GroupJoined], session: AsyncSession) -> None:
    await session.execute(insert(effects).values(event_id=event.envelope.id, person_id=event.data.person_id))


async def effect_counts(scratch: Scratch) -> dict[str, int]:
    async with scratch.engine.connect() as conn:
        rows = await conn.execute(select(effects.c.event_id, func.count()).group_by(effects.c.event_id))
        return {event_id: count for event_id, count in rows.all()}


class Worker:
    """A ConsumerRunner on the scratch topics, started and stopped like a service worker would."""

    def __init__(
        self, scratch: Scratch, producer: AIOKafkaProducer, handler: object, batch: BatchHandling | None = None
    ) -> None:
        self.scratch = scratch
        self.consumer = manual_commit_consumer(
            scratch.bootstrap, group_id=f"{scratch.schema}.{GROUP}", client_id="t", max_batch=50
        )
        self.runner = ConsumerRunner(
            config=RunnerConfig(
                group_id=GROUP,
                topics=(scratch.topics.name(GroupJoined.topic),),
                max_attempts=3,
                retry_backoff_s=0.01,
                poll_timeout_ms=200,
            ),
            consumer=self.consumer,
            producer=producer,
            sessions=scratch.sessions,
            handlers={GroupJoined.event_type: handler} if handler else {},  # type: ignore[dict-item]
            batch=batch,
        )
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Worker:
        await self.consumer.start()
        self.task = asyncio.create_task(self.runner.run(self.stop))
        return self

    async def __aexit__(self, *_: object) -> None:
        self.stop.set()
        assert self.task is not None
        await self.task
        await self.consumer.stop()


async def test_relay_crash_between_publish_and_mark_duplicates_on_kafka_but_not_in_effect(
    scratch: Scratch, producer: AIOKafkaProducer
) -> None:
    events = [joined("p1"), joined("p2")]
    async with scratch.sessions() as session, session.begin():
        await add_to_outbox(session, events, topics=scratch.topics)

    async def crash(_: list[int]) -> None:
        raise SystemExit("relay killed after Kafka acked, before the mark")

    config = RelayConfig(service="test", schema=scratch.schema, batch=100)
    crashing = OutboxRelay(
        config=config, engine=scratch.engine, producer=producer, database_url=scratch.url, before_mark=crash
    )
    with pytest.raises(SystemExit):
        await crashing.publish_batch()
    # The restarted relay finds the rows unmarked and publishes them again.
    healthy = OutboxRelay(config=config, engine=scratch.engine, producer=producer, database_url=scratch.url)
    assert await healthy.publish_batch() == 2
    assert await healthy.publish_batch() == 0

    on_kafka = await read_topic(scratch.bootstrap, scratch.topics.name(GroupJoined.topic))
    assert len(on_kafka) == 4  # each event twice: the duplicate really is on Kafka

    async with Worker(scratch, producer, record_effect):
        await eventually(lambda: _has_effects(scratch, {e.id for e in events}))
        await asyncio.sleep(1.0)  # let the copies arrive too
    assert await effect_counts(scratch) == {e.id: 1 for e in events}


async def test_failing_event_goes_to_dlq_others_flow_and_replay_brings_it_back(
    scratch: Scratch, producer: AIOKafkaProducer
) -> None:
    broken = {"poison"}

    async def handler(event: Received[GroupJoined], session: AsyncSession) -> None:
        if event.data.person_id in broken:
            raise ValueError("cannot handle this person yet")
        await record_effect(event, session)

    poison = joined("poison")
    before, after = [joined(f"ok{i}") for i in range(3)], [joined(f"later{i}") for i in range(3)]
    topic = scratch.topics.name(GroupJoined.topic)
    for event in [*before, poison, *after]:
        await producer.send_and_wait(topic, value=event.to_json(), key=event.key)
    # And a message that is not even an event: dead-lettered without retries.
    await producer.send_and_wait(topic, value=b"{not json", key=b"garbage")

    async with Worker(scratch, producer, handler):
        await eventually(lambda: _has_effects(scratch, {e.id for e in before + after}))
        dlq = await eventually(lambda: _dlq(scratch, expected=2))
    assert poison.id not in await effect_counts(scratch)
    by_key = {key: headers for key, _, headers in dlq}
    assert by_key[b"poison"]["siyu-error-type"] == b"ValueError"
    assert b"cannot handle" in by_key[b"poison"]["siyu-error"]
    assert by_key[b"poison"]["siyu-attempts"] == b"3"
    assert by_key[b"poison"]["siyu-original-topic"] == topic.encode()
    assert by_key[b"garbage"]["siyu-error-type"] == b"PoisonEvent"
    # As the AsyncAPI document's dead-letter message describes them (the original's headers kept).
    documented = Draft7Validator(asyncapi_document()["components"]["messages"]["siyu.dead_letter"]["headers"])
    for headers in by_key.values():
        assert documented.is_valid({name: value.decode() for name, value in headers.items()})

    broken.clear()  # the fix is deployed
    report = await replay_dlq(bootstrap_servers=scratch.bootstrap, topic=topic, consumer_group=GROUP)
    assert report.replayed == 2
    async with Worker(scratch, producer, handler):
        await eventually(lambda: _has_effects(scratch, {poison.id}))
    counts = await effect_counts(scratch)
    assert counts[poison.id] == 1
    assert all(count == 1 for count in counts.values())
    # The garbage failed again and is back in the DLQ; a second replay moves only that one copy, because the
    # replayer's position in the DLQ was committed.
    assert len(await read_topic(scratch.bootstrap, scratch.topics.dlq(GroupJoined.topic), idle_s=0.5)) == 3
    assert (await replay_dlq(bootstrap_servers=scratch.bootstrap, topic=topic)).replayed == 1


async def _has_effects(scratch: Scratch, ids: set[str]) -> bool:
    return ids <= set(await effect_counts(scratch))


async def _dlq(scratch: Scratch, *, expected: int):  # type: ignore[no-untyped-def]
    messages = await read_topic(scratch.bootstrap, scratch.topics.dlq(GroupJoined.topic), idle_s=0.5)
    return messages if len(messages) >= expected else None


async def test_stop_finishes_the_batch_in_flight_and_commits_it(scratch: Scratch, producer: AIOKafkaProducer) -> None:
    started = asyncio.Event()

    async def slow(event: Received[GroupJoined], session: AsyncSession) -> None:
        started.set()
        await asyncio.sleep(0.1)
        await record_effect(event, session)

    events = [joined("same-person") for _ in range(10)]  # one key: one partition, one batch, in order
    for event in events:
        await producer.send_and_wait(scratch.topics.name(GroupJoined.topic), value=event.to_json(), key=event.key)

    worker = Worker(scratch, producer, slow)
    async with worker:
        await started.wait()  # SIGTERM arrives while the batch is being handled
    handled = await effect_counts(scratch)
    assert set(handled) == {e.id for e in events}  # the whole batch finished

    # Its offsets were committed before the consumer closed (the inbox would hide a redelivery, so look directly).
    probe = manual_commit_consumer(
        scratch.bootstrap, group_id=f"{scratch.schema}.{GROUP}", client_id="probe", max_batch=1
    )
    await probe.start()
    try:
        topic = scratch.topics.name(GroupJoined.topic)
        committed = [await probe.committed(TopicPartition(topic, p)) or 0 for p in range(3)]
    finally:
        await probe.stop()
    assert sum(committed) == len(events)


async def test_batch_mode_claims_once_and_isolates_a_failing_event(
    scratch: Scratch, producer: AIOKafkaProducer
) -> None:
    calls: list[int] = []

    async def batch_handler(events: list[Received[GroupJoined]], session: AsyncSession) -> None:
        calls.append(len(events))
        if any(e.data.person_id == "poison" for e in events):
            raise ValueError("poison in the batch")
        for event in events:
            await record_effect(event, session)

    events = [joined(f"b{i % 3}") for i in range(30)]
    poison = joined("poison")
    topic = scratch.topics.name(GroupJoined.topic)
    for event in [*events[:15], poison, *events[15:], events[0], events[1]]:  # two redelivered copies at the end
        await producer.send_and_wait(topic, value=event.to_json(), key=event.key)

    batch = BatchHandling(types=frozenset({GroupJoined.event_type}), handler=batch_handler)
    async with Worker(scratch, producer, None, batch=batch):
        await eventually(lambda: _has_effects(scratch, {e.id for e in events}))
        await eventually(lambda: _dlq(scratch, expected=1))
    counts = await effect_counts(scratch)
    assert counts == {e.id: 1 for e in events}  # each once, copies absorbed, poison never applied
    assert max(calls) > 1  # really handled in batches
    dlq = await read_topic(scratch.bootstrap, scratch.topics.dlq(GroupJoined.topic), idle_s=0.5)
    assert [key for key, _, _ in dlq] == [b"poison"]


async def test_one_persons_events_on_two_topics_are_handled_in_one_transaction_in_order(
    scratch: Scratch, producer: AIOKafkaProducer
) -> None:
    """A contact event and then an order event of one person: the order's handler sees the contact's effect.

    Handled in two concurrent transactions (one per topic partition) it could not: the contact's write would be
    uncommitted while the order is handled.
    """
    seen: dict[str, bool] = {}

    async def on_joined(event: Received[GroupJoined], session: AsyncSession) -> None:
        await record_effect(event, session)
        await asyncio.sleep(0.3)  # a slow handler: a concurrent transaction would run meanwhile

    async def on_paid(event: Received[OrderPaid], session: AsyncSession) -> None:
        count = await session.scalar(
            select(func.count()).select_from(effects).where(effects.c.person_id == event.data.person_id)
        )
        seen[event.data.person_id] = bool(count)

    people = [f"x{i}" for i in range(4)]
    for person in people:
        contact = joined(person)
        await producer.send_and_wait(scratch.topics.name(Topic.CONTACTS), value=contact.to_json(), key=contact.key)
        paid = OrderPaid(
            order_id=f"o-{person}",
            order_no=person,
            channel="tmall",
            person_id=person,
            amount_fen=100,
            paid_at=datetime.now(UTC),
        )
        order = envelope(paid, tenant="glowlab", subject=person, source="/test")
        await producer.send_and_wait(scratch.topics.name(Topic.ORDERS), value=order.to_json(), key=order.key)

    consumer = manual_commit_consumer(scratch.bootstrap, group_id=f"{scratch.schema}.x", client_id="t", max_batch=50)
    runner = ConsumerRunner(
        config=RunnerConfig(
            group_id=GROUP,
            topics=(scratch.topics.name(Topic.CONTACTS), scratch.topics.name(Topic.ORDERS)),
            poll_timeout_ms=200,
        ),
        consumer=consumer,
        producer=producer,
        sessions=scratch.sessions,
        handlers={GroupJoined.event_type: on_joined, OrderPaid.event_type: on_paid},  # type: ignore[dict-item]
    )
    stop = asyncio.Event()
    await consumer.start()
    task = asyncio.create_task(runner.run(stop))
    try:
        await eventually(lambda: _all_seen(seen, people), timeout_s=30)
    finally:
        stop.set()
        await task
        await consumer.stop()
    assert seen == dict.fromkeys(people, True)


async def _all_seen(seen: dict[str, bool], people: list[str]) -> bool:
    return set(seen) == set(people)


async def test_a_slow_partition_holds_up_only_itself_and_keeps_its_order(
    scratch: Scratch, producer: AIOKafkaProducer
) -> None:
    """A partition's batch in flight does not stop the others' events from being fetched and handled; events of
    its own partition wait for it and are handled after it, in order."""
    release = asyncio.Event()
    handled: list[str] = []

    async def handler(event: Received[GroupJoined], session: AsyncSession) -> None:
        if event.data.person_id == "slow-0":
            await asyncio.wait_for(release.wait(), timeout=20)
        await record_effect(event, session)
        handled.append(event.data.person_id)

    topic = scratch.topics.name(GroupJoined.topic)

    async def send(person: str, partition: int) -> None:
        event = joined(person)
        await producer.send_and_wait(topic, value=event.to_json(), key=event.key, partition=partition)

    async with Worker(scratch, producer, handler):
        await send("slow-0", 0)
        await asyncio.sleep(0.5)  # the slow batch is in flight
        await send("slow-1", 0)
        await send("fast", 1)
        await eventually(lambda: _handled(handled, "fast"), timeout_s=10)  # while partition 0 is held
        assert "slow-0" not in handled and "slow-1" not in handled
        release.set()
        await eventually(lambda: _handled(handled, "slow-1"), timeout_s=10)
    assert handled == ["fast", "slow-0", "slow-1"]
    assert len(await effect_counts(scratch)) == 3


async def _handled(handled: list[str], person: str) -> bool:
    return person in handled
