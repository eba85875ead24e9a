"""Replay: move dead-lettered events back to the topic they came from, once the cause is fixed.

The replayer consumes ``<topic>.dlq`` in its own consumer group up to the end offsets seen at start, produces
each message (key, value, original headers) to its original topic, and commits. Consumers that had already
handled an event (the DLQ is shared by every group reading the topic) skip it through their inbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from siyu_shared.events.topics import DLQ_SUFFIX, dlq_name
from siyu_shared.kafka.clients import idempotent_producer, manual_commit_consumer
from siyu_shared.kafka.headers import CONSUMER_GROUP, ORIGINAL_TOPIC, REPLAYED_FROM, without_siyu_headers

REPLAY_GROUP = "siyu-dlq-replay"


def replay_group_id(dlq_topic: str) -> str:
    """The consumer group `siyu-dlq replay` reads a dead-letter topic with."""
    return f"{REPLAY_GROUP}.{dlq_topic}"


@dataclass(frozen=True, slots=True)
class ReplayReport:
    dlq_topic: str
    replayed: int
    skipped: int


async def replay_dlq(
    *,
    bootstrap_servers: str,
    topic: str,
    consumer_group: str | None = None,
    limit: int | None = None,
) -> ReplayReport:
    """Replay what is in ``topic``'s DLQ now; ``consumer_group`` limits it to events that group dead-lettered."""
    source = dlq_name(topic)
    consumer = manual_commit_consumer(
        bootstrap_servers,
        group_id=replay_group_id(source),
        client_id="siyu-dlq-replay",
        max_batch=500,
        isolation_level="read_uncommitted",
    )
    producer = idempotent_producer(bootstrap_servers, client_id="siyu-dlq-replay")
    await producer.start()
    await consumer.start()
    try:
        return await _replay(bootstrap_servers, consumer, producer, source, consumer_group, limit)
    finally:
        await consumer.stop()
        await producer.stop()


async def _partitions(bootstrap_servers: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="siyu-dlq-replay")
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(p["partition"] for d in described if d.get("error_code", 0) == 0 for p in d["partitions"])


async def _replay(
    bootstrap_servers: str,
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    source: str,
    consumer_group: str | None,
    limit: int | None,
) -> ReplayReport:
    tps = [TopicPartition(source, p) for p in await _partitions(bootstrap_servers, source)]
    if not tps:
        return ReplayReport(source, 0, 0)
    consumer.assign(tps)
    end = await consumer.end_offsets(tps)
    for tp in tps:
        committed = await consumer.committed(tp)
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
    replayed = skipped = 0
    done = {tp for tp in tps if await consumer.position(tp) >= end[tp]}
    while len(done) < len(tps) and (limit is None or replayed < limit):
        batches = await consumer.getmany(timeout_ms=1000, max_records=500)
        for tp, records in batches.items():
            for record in records:
                if record.offset >= end[tp] or (limit is not None and replayed >= limit):
                    done.add(tp)
                    break
                headers = dict(record.headers or ())
                original = headers.get(ORIGINAL_TOPIC, b"").decode() or source.removesuffix(DLQ_SUFFIX)
                group = headers.get(CONSUMER_GROUP, b"").decode()
                if consumer_group and group != consumer_group:
                    skipped += 1
                else:
                    await producer.send_and_wait(
                        original,
                        value=record.value,
                        key=record.key,
                        headers=[*without_siyu_headers(record.headers), (REPLAYED_FROM, source.encode())],
                    )
                    replayed += 1
                await consumer.commit({tp: record.offset + 1})
                if record.offset + 1 >= end[tp]:
                    done.add(tp)
        if not batches:
            for tp in tps:
                if await consumer.position(tp) >= end[tp]:
                    done.add(tp)
    return ReplayReport(source, replayed, skipped)
