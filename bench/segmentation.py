"""Segmentation benchmarks.

1. Backfill of a new rule over 1,000,000 synthetic profiles (set-based SQL, chunked, tags + tags.changed outbox
   rows written), next to a plain SQL UPDATE over the same rows (the ceiling). Target: under 30 s.
2. Incremental re-tagging from Kafka (events → facts → rules → tags → outbox) with the DCBA and lifecycle packs
   installed, next to a plain consume loop over the same messages (the ceiling). Target: at least 5,000 events/s.
   The workers run as deployed: ``WORKERS`` processes (2 unless ``BENCH_SEGMENTATION_WORKERS`` says otherwise)
   started with ``serve --role worker``, members of one consumer group, each with its outbox relay and loops. The
   backlog (50,000 events) is produced once they have all joined and the packs' backfills are done; the workers
   consume while it is produced, and the rate and the CPU per event are timed from the end of production (by then
   30-50% of it is committed) to the last event. With 10,000 events that window was 1.0-2.0 s: its edges (progress
   polled every 0.1 s, the batches in flight when it opens) moved the rate and the CPU per event by a quarter from
   one run to the next on the same stack. The ceiling decodes the same messages in as many processes, partitions
   split between them. The notes carry the CPU time per event of the workers and of Postgres (from /proc): the
   other sessions on the shared machine move the rate a lot, the CPU per event much less.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy import func, select, text

from bench.cpu import process_cpu_s, server_cpu_s
from bench.harness import BenchContext, Figure, settle
from siyu_segmentation import service
from siyu_segmentation.adapters.tables import inbox
from siyu_segmentation.domain.tagging import RuleBody
from siyu_segmentation.loops import run_backfill_step
from siyu_segmentation.packs import shipped_packs
from siyu_segmentation.settings import SegmentationSettings
from siyu_shared.db.engine import create_engine, session_factory
from siyu_shared.events.catalog import LeadCaptured, OrderPaid, SourceRef
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import envelope
from siyu_shared.events.topics import Topic, TopicNames, consumer_group_id

SUITE = "segmentation"
WORKERS = int(os.environ.get("BENCH_SEGMENTATION_WORKERS", "2"))
"""Worker processes of the incremental figure (members of one consumer group), two by default: the production
minimum (the worker HPA's ``minReplicas``), one per core here. Since profiles and tags are written once per batch,
a second worker is faster on this machine (4,259 against 3,672 events/s back to back, with another session busy);
before, it cost more CPU per event than it gained."""
BACKFILL_CHUNK: int = SegmentationSettings.model_fields["backfill_chunk"].default
"""Profiles per backfill transaction: the service's own default, as deployed."""

_SYNTHETIC = text(
    """
    INSERT INTO profiles (tenant, person_id, first_seen_at, last_seen_at, first_channel, channels, lead_count,
                          order_count, paid_fen, net_fen, last_order_at, first_order_at, avg_order_fen, attributes)
    SELECT :tenant, 'p' || lpad(i::text, 8, '0'), now() - interval '400 days', now() - (i % 30) * interval '1 day',
           (ARRAY['xiaohongshu', 'douyin', 'tmall', 'wecom'])[1 + i % 4],
           ARRAY[(ARRAY['xiaohongshu', 'douyin', 'tmall', 'wecom'])[1 + i % 4]],
           1 + i % 3, i % 7, (i % 7) * 12000, (i % 7) * 11000,
           CASE WHEN i % 7 > 0 THEN now() - (i % 200) * interval '1 day' END,
           CASE WHEN i % 7 > 0 THEN now() - interval '300 days' END,
           CASE WHEN i % 7 > 0 THEN 12000 END,
           jsonb_build_object('skin_type', (ARRAY['dry', 'oily', 'mixed'])[1 + i % 3], 'age', 18 + i % 40)
    FROM generate_series(1, :n) AS i
    """
)

_BACKFILLS_RUNNING = text("SELECT count(*) FROM backfills WHERE tenant = :tenant AND status IN ('pending', 'running')")

BENCH_RULE = {
    "tag": "bench_active_buyer",
    "description": "Bought at least 3 times, last order within 90 days, from a social channel, not oily skin.",
    "when": {
        "all": [
            {"fact": "order_count", "gte": 3},
            {"fact": "last_order_at", "within": "90d"},
            {"fact": "first_channel", "in": ["xiaohongshu", "douyin"]},
            {"not": {"fact": "attr.skin_type", "eq": "oily"}},
        ]
    },
}


async def run(ctx: BenchContext) -> list[Figure]:
    figures = await _backfill(ctx)
    # The backfill leaves 1,000,000 rewritten profiles and their tag rows for autovacuum: let it finish (as between
    # suites) so vacuuming the backfill is not charged to the re-tagging's Postgres CPU and window.
    settled = await settle(ctx.stack)
    print(
        f"# segmentation: settled in {settled:.1f}s after the backfill (CHECKPOINT, autovacuum idle)", file=sys.stderr
    )
    figures += await _incremental(ctx)
    return figures


async def _backfill(ctx: BenchContext) -> list[Figure]:
    n = ctx.scaled(1_000_000)
    tenant = f"bench{uuid4().hex[:6]}"
    engine = create_engine(ctx.stack.service_dsn("segmentation"), schema="segmentation", pool_size=2)
    sessions = session_factory(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(_SYNTHETIC, {"tenant": tenant, "n": n})
            await conn.execute(text("ANALYZE profiles"))
        # Ceiling: one plain UPDATE touching every row of the tenant once.
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE profiles SET updated_at = now() WHERE tenant = :t"), {"t": tenant})
        ceiling = time.perf_counter() - started

        async with sessions() as session, session.begin():
            _, job = await service.put_rule(
                session, tenant=tenant, rule_id="bench-active-buyer", body=RuleBody.model_validate(BENCH_RULE)
            )
        topics = TopicNames(ctx.stack.topic_prefix)
        started = time.perf_counter()
        while True:
            await run_backfill_step(sessions, topics=topics, chunk=BACKFILL_CHUNK, now=datetime.now(UTC))
            async with engine.connect() as conn:
                status, changed = (
                    await conn.execute(text("SELECT status, changed FROM backfills WHERE id = :id"), {"id": job})
                ).one()
            if status == "done":
                break
        elapsed = time.perf_counter() - started
        async with engine.begin() as conn:  # leave the outbox empty for the suites that follow
            await conn.execute(text("DELETE FROM outbox WHERE tenant = :t"), {"t": tenant})
    finally:
        await engine.dispose()
    return [
        Figure(
            suite=SUITE,
            name=f"backfill of a new rule over {n:,} profiles",
            value=elapsed,
            unit="s",
            higher_is_better=False,
            ceiling=ceiling,
            ceiling_label="plain SQL UPDATE of the same rows",
            target=30.0 if ctx.scale >= 1 else None,
            notes=f"{changed:,} people gained the tag (tags + tags.changed outbox rows written in SQL), "
            f"{BACKFILL_CHUNK:,} profiles a transaction (the service default)",
        ),
        Figure(
            suite=SUITE,
            name="backfill throughput",
            value=n / elapsed,
            unit="profiles/s",
            ceiling=n / ceiling,
            ceiling_label="plain SQL UPDATE of the same rows",
        ),
    ]


async def _incremental(ctx: BenchContext) -> list[Figure]:
    n = ctx.scaled(50_000)
    prefix = await ctx.fresh_topics()
    topics = TopicNames(prefix)
    tenant = f"bench{uuid4().hex[:6]}"
    messages = _backlog(topics, tenant, n)
    dsn = ctx.stack.service_dsn("segmentation")
    engine = create_engine(dsn, schema="segmentation", pool_size=1)
    group = consumer_group_id(prefix, "segmentation", "main")
    postmaster = ctx.stack.postgres.pid if ctx.stack.postgres is not None else None
    try:
        async with session_factory(engine)() as session, session.begin():
            for name in ("dcba", "lifecycle"):
                await service.install_pack(session, tenant=tenant, pack=shipped_packs()[name])
        # The packs' backfills find no profiles yet. The workers join the group first (the first to join would
        # otherwise take every partition alone until the others are up), then the backlog is produced at once.
        async with _workers(ctx, prefix, WORKERS) as pids:
            admin = AIOKafkaAdminClient(bootstrap_servers=ctx.stack.bootstrap_servers)
            await admin.start()
            try:
                for _ in range(1200):
                    if await _group_members(admin, group) >= WORKERS:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError(f"{WORKERS} workers did not join {group} within two minutes")
            finally:
                await admin.close()
            # The packs' backfills (over no profiles yet) are done first: one running late would re-evaluate the
            # profiles the events create, holding the tenant lock exclusively, in the middle of the measurement.
            for _ in range(1200):
                async with engine.connect() as conn:
                    if not await conn.scalar(_BACKFILLS_RUNNING, {"tenant": tenant}):
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the packs' backfills did not finish within two minutes")
            last_ids = await _produce(ctx.stack.bootstrap_servers, messages)
            # Progress = the workers' inbox rows (committed with their effects). Polled cheaply (is any row there,
            # are the last events of every partition there: a partition is handled in order), counted in full at
            # the first poll, once production has ended (the timing starts there), and at the end, where every one
            # of the n events must be.
            inboxed = select(func.count()).where(inbox.c.consumer == group)
            first_seen: tuple[float, int, float, float] | None = None
            while True:
                async with engine.connect() as conn:
                    if first_seen is None:
                        if await conn.scalar(select(inbox.c.event_id).where(inbox.c.consumer == group).limit(1)):
                            cpu = sum(process_cpu_s(pid) for pid in pids)
                            done = int(await conn.scalar(inboxed) or 0)
                            first_seen = (time.perf_counter(), done, cpu, (server_cpu_s(postmaster) or 0.0))
                    elif await conn.scalar(inboxed.where(inbox.c.event_id.in_(last_ids))) == len(last_ids):
                        ended = time.perf_counter()
                        if int(await conn.scalar(inboxed) or 0) >= n:
                            break
                await asyncio.sleep(0.1)
            assert first_seen is not None
            elapsed = max(1e-6, ended - first_seen[0])
            counted = n - first_seen[1]
            rate = counted / elapsed if counted else float(n)
            worker_cpu = sum(process_cpu_s(pid) for pid in pids) - first_seen[2]
            postgres_cpu = (server_cpu_s(postmaster) or 0.0) - first_seen[3]
    finally:
        await engine.dispose()
    consumed = [topics.name(Topic.LEADS), topics.name(Topic.ORDERS)]
    ceiling = await _plain_consume(ctx.stack.bootstrap_servers, consumed, ctx.stack.partitions, WORKERS)
    cpu_note = (
        f"; CPU per event: workers {worker_cpu / counted * 1e6:.0f} µs + Postgres {postgres_cpu / counted * 1e6:.0f} µs"
        if counted
        else ""
    )
    return [
        Figure(
            suite=SUITE,
            name="incremental re-tagging from Kafka",
            value=rate,
            unit="events/s",
            ceiling=ceiling,
            ceiling_label=f"plain consume loop (decode only), {WORKERS} process(es), partitions split between them",
            target=5000.0,
            notes=f"{n:,} events (lead + order per person), DCBA + lifecycle packs (15 rules); {WORKERS} worker "
            "process(es) as deployed (`serve --role worker`: consumer group member, outbox relay publishing every "
            f"tags.changed, loops), timed from the end of production to the last event{cpu_note}; "
            f"load {os.getloadavg()[0]:.1f}",
        )
    ]


Message = tuple[str, bytes, bytes | None, str]  # topic, value, key, event id


def _backlog(topics: TopicNames, tenant: str, n: int) -> list[Message]:
    """``n`` events as (topic, value, key, event id), two per person: a lead, then an order."""
    now = datetime.now(UTC)
    messages = []
    for i in range(n):
        person = f"p{i // 2:08d}"
        if i % 2 == 0:
            data: LeadCaptured | OrderPaid = LeadCaptured(
                lead_id=f"l{i}",
                person_id=person,
                kind="form",
                occurred_at=now - timedelta(days=i % 100),
                source=SourceRef(channel="xiaohongshu"),
                attributes={"skin_type": "dry"},
                incentive=i % 3 == 0,
            )
        else:
            data = OrderPaid(
                order_id=f"o{i}",
                order_no=f"o{i}",
                channel="tmall",
                person_id=person,
                amount_fen=5000 + i % 50000,
                paid_at=now - timedelta(days=i % 100),
            )
        event = envelope(data, tenant=tenant, subject=person, source="/bench")
        messages.append((topics.name(data.topic), event.to_json(), event.key, event.id))
    return messages


async def _produce(bootstrap: str, messages: list[Message]) -> list[str]:
    """Send every message; returns the event ids of the last message of each partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1)
    await producer.start()
    try:
        pending = [await producer.send(topic, value=value, key=key) for topic, value, key, _ in messages]
        sent = await asyncio.gather(*pending)
    finally:
        await producer.stop()
    last: dict[tuple[str, int], tuple[int, str]] = {}
    for meta, (_, _, _, event_id) in zip(sent, messages, strict=True):
        at = (meta.topic, meta.partition)
        if at not in last or meta.offset > last[at][0]:
            last[at] = (meta.offset, event_id)
    return [event_id for _, event_id in last.values()]


async def _plain_consume(bootstrap: str, topic_names: list[str], partition_count: int, processes: int) -> float:
    """The ceiling: every message decoded by a plain consume loop, the partitions split between ``processes``
    processes (as many as the workers measured), all starting at the same instant."""
    start_at = time.time() + 3.0  # after every process has started and fetched its offsets
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool, _consume_part, bootstrap, topic_names, partition_count, i, processes, start_at
                )
                for i in range(processes)
            )
        )
    total = sum(seen for seen, _, _ in parts)
    return total / max(1e-6, max(end for _, _, end in parts) - min(start for _, start, _ in parts))


def _consume_part(
    bootstrap: str, topic_names: list[str], partition_count: int, index: int, processes: int, start_at: float
) -> Part:
    return asyncio.run(_consume_partitions(bootstrap, topic_names, partition_count, index, processes, start_at))


Part = tuple[int, float, float]  # messages seen, started, finished (wall clock, comparable across processes)


async def _consume_partitions(
    bootstrap: str, topic_names: list[str], partition_count: int, index: int, processes: int, start_at: float
) -> Part:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for topic in topic_names for p in range(index, partition_count, processes)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        expected = sum((await consumer.end_offsets(partitions)).values())
        await asyncio.sleep(max(0.0, start_at - time.time()))
        started, seen = time.time(), 0
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batches.values():
                for record in records:
                    assert record.value is not None
                    CloudEvent.from_json(record.value)
                    seen += 1
        return seen, started, time.time()
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def _workers(ctx: BenchContext, prefix: str, count: int) -> AsyncIterator[list[int]]:
    """``count`` worker processes, started as deployed (``python -m siyu_segmentation serve --role worker``)."""
    env = {
        **os.environ,
        **ctx.stack.env(),
        "SEGMENTATION_KAFKA_TOPIC_PREFIX": prefix,
        "SEGMENTATION_LOG_LEVEL": "WARNING",
    }
    procs: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(count):
            args = ["-m", "siyu_segmentation", "serve", "--role", "worker", "--port", str(_free_port())]
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, *args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _group_members(admin: AIOKafkaAdminClient, group: str) -> int:
    """Members of a consumer group once it is stable (0 while it rebalances or does not exist yet)."""
    with contextlib.suppress(KafkaError):
        for response in await admin.describe_consumer_groups([group]):
            for described in response.groups:
                state, members = described[2], described[5]
                if state == "Stable":
                    return len(members)
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
