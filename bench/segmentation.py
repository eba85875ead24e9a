"""Segmentation benchmarks.

1. Backfill of a new rule over 1,000,000 synthetic profiles (set-based SQL, chunked, tags + tags.changed outbox
   rows written), next to a plain SQL UPDATE over the same rows (the ceiling). Target: under 30 s.
2. Incremental re-tagging from Kafka (events → facts → rules → tags → outbox) with the DCBA and lifecycle packs
   installed, next to a plain consume loop over the same messages (the ceiling). Target: at least 5,000 events/s.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select, text

from bench.harness import BenchContext, Figure
from siyu_devstack.testing import running_service
from siyu_segmentation import service
from siyu_segmentation.adapters.tables import inbox
from siyu_segmentation.domain.tagging import RuleBody
from siyu_segmentation.loops import run_backfill_step
from siyu_segmentation.packs import shipped_packs
from siyu_shared.db.engine import create_engine, session_factory
from siyu_shared.events.catalog import LeadCaptured, OrderPaid, SourceRef
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import envelope
from siyu_shared.events.topics import Topic, TopicNames

SUITE = "segmentation"

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
            await run_backfill_step(sessions, topics=topics, chunk=50_000, now=datetime.now(UTC))
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
            notes=f"{changed:,} people gained the tag (tags + tags.changed outbox rows written in SQL)",
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
    n = ctx.scaled(10_000)
    prefix = await ctx.fresh_topics()
    topics = TopicNames(prefix)
    tenant = f"bench{uuid4().hex[:6]}"
    now = datetime.now(UTC)
    producer = AIOKafkaProducer(bootstrap_servers=ctx.stack.bootstrap_servers, linger_ms=20, acks=1)
    await producer.start()
    try:
        pending = []
        for i in range(n):
            person = f"p{i // 2:08d}"  # two events per person: a lead, then an order
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
            pending.append(await producer.send(topics.name(data.topic), value=event.to_json(), key=event.key))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()

    ceiling = await _plain_consume(
        ctx.stack.bootstrap_servers, [topics.name(Topic.LEADS), topics.name(Topic.ORDERS)], n
    )

    engine = create_engine(ctx.stack.service_dsn("segmentation"), schema="segmentation", pool_size=1)
    try:
        async with session_factory(engine)() as session, session.begin():
            for name in ("dcba", "lifecycle"):
                await service.install_pack(session, tenant=tenant, pack=shipped_packs()[name])
    finally:
        await engine.dispose()
    # The backfills of the packs find no profiles yet; the worker now consumes everything that was produced.
    async with running_service("segmentation", ctx.stack, topic_prefix=prefix, role="worker") as (app, _):
        runtime = app.state.runtime
        sessions, group = runtime.sessions, runtime.group_id("main")
        first_seen: tuple[float, int] | None = None
        while True:
            # Progress = the worker's inbox rows (committed with their effects), counted on the primary key.
            async with sessions() as session:
                done = int(await session.scalar(select(func.count()).where(inbox.c.consumer == group)) or 0)
            if done and first_seen is None:
                first_seen = (time.perf_counter(), done)
            if done >= n:
                break
            await asyncio.sleep(0.1)
        assert first_seen is not None
        elapsed = max(1e-6, time.perf_counter() - first_seen[0])
        rate = (n - first_seen[1]) / elapsed if n > first_seen[1] else float(n)
    return [
        Figure(
            suite=SUITE,
            name="incremental re-tagging from Kafka",
            value=rate,
            unit="events/s",
            ceiling=ceiling,
            ceiling_label="plain consume loop (decode only)",
            target=5000.0,
            notes=f"{n:,} events (lead + order per person), DCBA + lifecycle packs (15 rules); one worker process "
            "(consumer, outbox relay publishing every tags.changed, loops), timed from its first committed batch",
        )
    ]


async def _plain_consume(bootstrap: str, topic_names: list[str], n: int) -> float:
    consumer = AIOKafkaConsumer(
        *topic_names, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        seen = 0
        started: float | None = None
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            if started is None and batches:
                started = time.perf_counter()
            for records in batches.values():
                for record in records:
                    assert record.value is not None
                    CloudEvent.from_json(record.value)
                    seen += 1
        assert started is not None
        return n / max(1e-6, time.perf_counter() - started)
    finally:
        await consumer.stop()
