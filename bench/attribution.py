"""Attribution benchmarks.

1. Replay 1,000,000 orders with their touches (3 per order: a persona journey touch, a 1v1 staff touch and a group
   touch; 30 % also claimed by a 1v1 staff, 10 % from a KOL source) through the same book the handlers use
   (``book.reattribute`` then ``book.release``, whose entries are the COPY rows): attribute under the plan, price,
   post double entries, settle the ones past their holding period, and COPY orders, attributions, shares and
   ledger entries into the real tables (primary keys, indexes, append-only triggers). One replay process per core, each
   pipelined: chunk N+1 is generated and replayed in a thread while chunk N is COPYed (binary, timestamps through
   the adapter's codec) from the event loop. Ceiling: the same rows COPYed (same encoding) into tables of the same
   shape without indexes or triggers, measured in the same run on a sample of the chunks; expressed in orders/s.
2. The live path: a backlog of orders and touches on Kafka consumed by the service's worker (consumer runner,
   inbox, per-order locks, the book, outbox), until every order is attributed and posted. Ceiling: a bare consumer
   reading the same backlog from the same broker.
3. Close the period those orders fall in (statements per payee, outbox events). Ceiling: the bare aggregate over
   the payable entries that any close must read.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import random
import secrets
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select

from bench.cpu import server_cpu_s
from bench.harness import BenchContext, Figure
from siyu_attribution import accounting
from siyu_attribution.accounting import Books
from siyu_attribution.adapters.bulk import (
    ATTRIBUTION_COLUMNS,
    ENTRY_COLUMNS,
    ORDER_COLUMNS,
    SHARE_COLUMNS,
    copy_replay,
    prepare_copy,
)
from siyu_attribution.adapters.tables import orders
from siyu_attribution.domain.facts import ClaimFact, Evidence, Line, OrderFacts, SourceFact, TouchFact
from siyu_attribution.domain.plans import DEFAULT_PLAN
from siyu_attribution.replay import OrderHistory, ReplayRows, replay
from siyu_devstack.testing import running_service
from siyu_shared.db.engine import create_engine, session_factory, unit_of_work
from siyu_shared.events.catalog import OrderPaid, TouchSent
from siyu_shared.events.registry import envelope
from siyu_shared.events.topics import Topic, TopicNames
from siyu_shared.settings import to_libpq_url

SUITE = "attribution"
CHUNK = 10_000
T0 = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 2, tzinfo=UTC)
STAFF, ACTIVATORS, KOLS = 500, 50, 40
TABLES = ("orders", "attributions", "attribution_shares", "ledger_entries")


class Synthetic:
    """Deterministic orders with touches, cheap to make: a pool of touch patterns reused across orders, so the
    benchmark times the replay, not the generator."""

    POOL = 997

    def __init__(self, seed: int = 6) -> None:
        rng = random.Random(seed)
        # Per pattern: paid at, touches and sources, claimer, amount, first line, claimed at, completed at, and the
        # evidence shared by the orders of the pattern nobody claimed.
        self.patterns: list[
            tuple[datetime, tuple[TouchFact, ...], tuple[SourceFact, ...], str | None, int, int, datetime, datetime]
        ] = []
        self.unclaimed: list[Evidence] = []
        for k in range(self.POOL):
            paid = T0 + timedelta(seconds=rng.randrange(0, 26 * 86_400))
            touches = (
                TouchFact(f"j{k}", "journey", "wecom_1v1", paid - timedelta(days=5), None, "xiaowan"),
                TouchFact(f"s{k}", "staff", "wecom_1v1", paid - timedelta(days=2), f"s{rng.randrange(STAFF)}"),
                TouchFact(f"g{k}", "group", "wecom_group", paid - timedelta(days=1), f"g{rng.randrange(ACTIVATORS)}"),
            )
            sources = (
                (SourceFact(f"l{k}", f"kol{rng.randrange(KOLS)}", "kol", paid - timedelta(days=9)),)
                if rng.random() < 0.1
                else ()
            )
            claimer = f"s{rng.randrange(STAFF)}" if rng.random() < 0.3 else None
            amount = rng.randrange(5_000, 50_000)
            first = rng.randrange(1_000, amount)
            claimed, completed = paid + timedelta(hours=2), paid + timedelta(days=2)
            self.patterns.append((paid, touches, sources, claimer, amount, first, claimed, completed))
            self.unclaimed.append(Evidence(touches, sources))

    def histories(self, start: int, count: int) -> list[OrderHistory]:
        out = []
        for i in range(start, start + count):
            paid, touches, sources, claimer, amount, first, claimed, completed = self.patterns[i % self.POOL]
            n = str(i)
            lines = (Line(n + "-1", first, "skincare"), Line(n + "-2", amount - first, "makeup"))
            order = OrderFacts("o" + n, "T" + n, "p" + n, amount, paid, lines, "tmall")
            evidence = (
                Evidence(touches, sources, (ClaimFact("c" + n, "T" + n, claimer, "staff_1v1", claimed),))
                if claimer
                else self.unclaimed[i % self.POOL]
            )
            out.append(OrderHistory(order, evidence, completed))
        return out


def _replay_worker(dsn: str, tenant: str, n: int, worker: int, workers: int) -> tuple[int, float, float, float]:
    """One replay process: its share of the chunks (orders are independent, as partitions by person are), and the
    CPU time it used (both threads: generator, book, COPY encoding)."""
    began = time.process_time()
    done, computing, copying = asyncio.run(_replay_chunks(dsn, tenant, n, worker, workers))
    return done, computing, copying, time.process_time() - began


async def _replay_chunks(dsn: str, tenant: str, n: int, worker: int, workers: int) -> tuple[int, float, float]:
    """Pipelined: chunk N+1 is generated and replayed in a thread while chunk N is COPYed from the event loop."""
    synthetic = Synthetic()
    connections = [await asyncpg.connect(dsn, server_settings={"search_path": "attribution"}) for _ in TABLES]

    def compute(start: int) -> tuple[int, ReplayRows, float]:
        # The load generator: made with the cycle collector paused (as the replay is), or its rescans of the rows
        # still waiting for COPY would cost more than making the orders.
        gc.disable()
        try:
            chunk = synthetic.histories(start, min(CHUNK, n - start))
        finally:
            gc.enable()
        began = time.perf_counter()
        rows = replay(tenant=tenant, histories=chunk, plan=DEFAULT_PLAN, now=NOW, last_closed=None)
        return len(chunk), rows, time.perf_counter() - began

    async def copy(rows: ReplayRows) -> float:
        began = time.perf_counter()
        await copy_replay(connections, rows)
        return time.perf_counter() - began

    done, computing, copying = 0, 0.0, 0.0
    copying_task: asyncio.Task[float] | None = None
    try:
        for start in range(worker * CHUNK, n, workers * CHUNK):
            count, rows, spent = await asyncio.to_thread(compute, start)
            computing += spent
            if copying_task is not None:
                copying += await copying_task
            copying_task = asyncio.create_task(copy(rows))
            done += count
        if copying_task is not None:
            copying += await copying_task
    finally:
        if copying_task is not None and not copying_task.done():
            copying_task.cancel()
        for conn in connections:
            await conn.close()
    return done, computing, copying


async def run(ctx: BenchContext) -> list[Figure]:
    n = ctx.scaled(1_000_000)
    dsn = to_libpq_url(ctx.stack.service_dsn("attribution"))
    connections = [await asyncpg.connect(dsn, server_settings={"search_path": "attribution"}) for _ in TABLES]
    tenant = f"bench{secrets.token_hex(3)}"
    raw = [f"bench_raw_{table}" for table in TABLES]
    try:
        for table, copy in zip(TABLES, raw, strict=True):
            await connections[0].execute(f"DROP TABLE IF EXISTS {copy}")
            await connections[0].execute(f"CREATE TABLE {copy} (LIKE {table} INCLUDING DEFAULTS INCLUDING IDENTITY)")
        # The replay, in as many processes as there are cores (the database shares them).
        workers = max(1, min(os.cpu_count() or 1, (n + CHUNK - 1) // CHUNK))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            await asyncio.gather(*(asyncio.wrap_future(pool.submit(_warm_up)) for _ in range(workers)))
            postmaster = ctx.stack.postgres.pid if ctx.stack.postgres is not None else None
            load_began, server_began, began = os.getloadavg()[0], server_cpu_s(postmaster), time.perf_counter()
            results = await asyncio.gather(
                *(asyncio.wrap_future(pool.submit(_replay_worker, dsn, tenant, n, w, workers)) for w in range(workers))
            )
            replay_s = time.perf_counter() - began
            server_ended, load_ended = server_cpu_s(postmaster), os.getloadavg()[0]
        assert sum(r[0] for r in results) == n
        computing = sum(r[1] for r in results)
        copying = sum(r[2] for r in results)
        cpu_us = sum(r[3] for r in results) / n * 1e6
        server_us = (
            f"; {(server_ended - server_began) / n * 1e6:.0f} µs of Postgres CPU per order (all its processes)"
            if server_began is not None and server_ended is not None
            else ""
        )

        # The ceiling: the same rows (a sample of the chunks) COPYed into bare tables, four streams as above.
        synthetic = Synthetic()
        ceiling_s, ceiling_orders = 0.0, 0
        for start in range(0, min(n, 10 * CHUNK), CHUNK):
            rows = replay(
                tenant=tenant,
                histories=synthetic.histories(start, min(CHUNK, n - start)),
                plan=DEFAULT_PLAN,
                now=NOW,
                last_closed=None,
            )
            began = time.perf_counter()
            await _copy_raw(connections, raw, rows)
            ceiling_s += time.perf_counter() - began
            ceiling_orders += len(rows.orders)
        entry_count = await connections[0].fetchval("SELECT count(*) FROM ledger_entries WHERE tenant = $1", tenant)

        engine = create_engine(ctx.stack.service_dsn("attribution"), schema="attribution", pool_size=2)
        try:
            began = time.perf_counter()
            async with unit_of_work(session_factory(engine)) as session:
                statements = await accounting.close_period(
                    session, Books(topics=TopicNames("")), tenant=tenant, period="2026-10", now=NOW
                )
            close_s = time.perf_counter() - began
        finally:
            await engine.dispose()
        began = time.perf_counter()
        await connections[0].fetch(
            "SELECT period, payee_id, sum(amount_fen), count(*) FROM ledger_entries "
            "WHERE tenant = $1 AND account LIKE 'payable:%' AND period <= '2026-10' GROUP BY 1, 2",
            tenant,
        )
        aggregate_s = time.perf_counter() - began
    finally:
        for copy in raw:
            await connections[0].execute(f"DROP TABLE IF EXISTS {copy}")
        for conn in connections:
            await conn.close()

    live = await _live_path(ctx)
    return [
        *live,
        Figure(
            SUITE,
            f"replay {n:,} orders with touches (attribute, price, post, settle, COPY)",
            n / replay_s,
            "orders/s",
            ceiling=ceiling_orders / ceiling_s,
            ceiling_label="COPY of the same rows into bare tables",
            target=10_000,
            notes=(
                f"{entry_count:,} ledger entries; {replay_s:.1f} s wall; {workers} replay processes (orders split "
                f"by chunk, as by person), each replaying its next chunk in a thread while the last one is COPYed: "
                f"{computing:.1f} s in the book and {copying:.1f} s in COPY, overlapped; {cpu_us:.0f} µs of "
                f"replay-process CPU per order{server_us}; load average {load_began:.1f} → {load_ended:.1f}"
            ),
        ),
        Figure(
            SUITE,
            f"close a period of {n:,} orders ({len(statements)} statements)",
            close_s,
            "s",
            higher_is_better=False,
            ceiling=aggregate_s,
            ceiling_label="bare GROUP BY over the payable entries",
            target=60,
        ),
    ]


async def _live_path(ctx: BenchContext) -> list[Figure]:
    count = ctx.scaled(20_000)
    prefix = await ctx.fresh_topics()
    topics = TopicNames(prefix)
    tenant = f"bench{secrets.token_hex(3)}"
    producer = AIOKafkaProducer(bootstrap_servers=ctx.stack.bootstrap_servers, enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        for i in range(count):
            person, paid = f"p{i}", T0 + timedelta(minutes=i)
            touch = TouchSent(
                touch_id=f"t{i}",
                person_id=person,
                channel="wecom_1v1",
                kind="staff",
                staff_id=f"s{i % STAFF}",
                occurred_at=paid - timedelta(hours=3),
            )
            order = OrderPaid(
                order_id=f"o{i}",
                order_no=f"T{i}",
                channel="tmall",
                person_id=person,
                amount_fen=10_000 + i % 5_000,
                paid_at=paid,
            )
            for data, topic in ((touch, Topic.TOUCHES), (order, Topic.ORDERS)):
                event = envelope(data, tenant=tenant, subject=person, source="/bench")
                await producer.send(topics.name(topic), value=event.to_json(), key=event.key)
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topics.name(Topic.TOUCHES),
        topics.name(Topic.ORDERS),
        bootstrap_servers=ctx.stack.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        began, seen = time.perf_counter(), 0
        while seen < 2 * count:
            seen += sum(len(records) for records in (await consumer.getmany(timeout_ms=500)).values())
        bare_s = time.perf_counter() - began
    finally:
        await consumer.stop()

    async with running_service("attribution", ctx.stack, topic_prefix=prefix, role="worker") as (app, _):

        async def attributed() -> int:
            async with app.state.runtime.sessions() as session:
                done = await session.scalar(
                    select(func.count())
                    .select_from(orders)
                    .where(orders.c.tenant == tenant, orders.c.attribution_id.is_not(None))
                )
            return int(done or 0)

        first = 0
        while first == 0:
            first = await attributed()
            await asyncio.sleep(0.05)
        began = time.perf_counter()
        done = first
        while done < count:
            await asyncio.sleep(0.2)
            done = await attributed()
        live_s = time.perf_counter() - began
    return [
        Figure(
            SUITE,
            f"live worker: {count:,} orders (+1 touch each) from Kafka, attributed and posted",
            (count - first) / live_s if live_s else float(count),
            "orders/s",
            ceiling=count / bare_s,
            ceiling_label="bare consumer over the same backlog",
            notes="timed from the first order attributed to the last (the consumer group join is not counted)",
        )
    ]


def _warm_up() -> None:
    """Imports done before the clock starts."""


async def _copy_raw(connections: list[asyncpg.Connection], raw: list[str], rows: ReplayRows) -> None:
    for conn in connections:
        await prepare_copy(conn)  # the replay's own encoding, so the ceiling differs only by indexes and triggers
    work = zip(
        raw,
        (ORDER_COLUMNS, ATTRIBUTION_COLUMNS, SHARE_COLUMNS, ENTRY_COLUMNS),
        (rows.orders, rows.attributions, rows.shares, rows.entries),
        strict=True,
    )
    await asyncio.gather(
        *(
            conn.copy_records_to_table(table, records=records, columns=list(columns))
            for conn, (table, columns, records) in zip(connections, work, strict=True)
        )
    )
