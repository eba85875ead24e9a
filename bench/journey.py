"""Journey benchmarks.

1. 100,000 timers due at once fired to the sandbox sender: enrolments parked on a wait; the service's worker
   role runs as it is deployed, ``TIMER_WORKERS`` processes (one per core) whose timer claimers skip each
   other's rows; the timers (due a minute ago, real time) are committed in one transaction while the workers run;
   time from that commit until every touch is delivered (timer fired → touch queued → guardrails → sandbox →
   outcome + event in the outbox). Ceiling: the same number of rows written by plain batched INSERTs on the same
   database, the least any design that records each fired touch must do.
2. Event → touch latency for an immediate step at 300 events/s: contact.added produced to Kafka (by a load
   generator in a process of its own, as upstream services are) → greeting delivered to the sandbox (its row's
   commit time), the worker role in a process of its own (``LATENCY_WORKERS``). Ceiling: a bare produce →
   consume round trip through the same broker at the same rate.

Both run on the real clock; the tenant's quiet hours are put away from the time of the run (the guardrail is
still decided for every touch), so a run in the evening measures the same work as one in the morning. The notes
carry the CPU seconds the worker processes spent (from /proc): on the shared 2-core box it moves far less with
the other helpers' load than wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy import exists, func, select, text

from bench.cpu import process_cpu_s
from bench.harness import BenchContext, Figure
from siyu_devstack.testing import eventually, running_service
from siyu_journey.adapters.tables import sandbox_deliveries, timers
from siyu_journey.domain.localtime import SHANGHAI
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import create_engine, session_factory, unit_of_work
from siyu_shared.events.catalog import ContactAdded, SourceRef
from siyu_shared.events.registry import envelope
from siyu_shared.events.topics import Topic, TopicNames, consumer_group_id

SUITE = "journey"
ROOT = Path(__file__).resolve().parent.parent
TIMER_WORKERS = 2
"""Worker-role processes (replicas) firing the timers: one per core of the 2-core bench machine; their claimers
skip each other's rows."""
LATENCY_WORKERS = 1
"""Worker-role processes consuming in the latency run (the consumer group would split the partitions between
several): at 300 events/s one keeps up, and on the shared 2-core box a second only adds wake-ups (A/B at load
~6: p50 400–500 ms with one, 950–1,400 ms with two)."""


def _quiet_hours_away_from_now() -> dict[str, str]:
    """A one-hour quiet window twelve hours from now (Shanghai time): checked for every touch, never hit."""
    start = datetime.now(SHANGHAI) + timedelta(hours=12)
    return {"quiet_start": f"{start:%H}:00", "quiet_end": f"{(start + timedelta(hours=1)):%H}:00"}


async def _group_stable(ctx: BenchContext, group: str, members: int) -> None:
    """Until the consumer group is stable with ``members`` members (the first worker to join would otherwise hold
    every partition alone until the others are up)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=ctx.stack.bootstrap_servers)
    await admin.start()
    try:
        for _ in range(1200):
            with contextlib.suppress(KafkaError):
                for response in await admin.describe_consumer_groups([group]):
                    for described in response.groups:
                        if described[2] == "Stable" and len(described[5]) >= members:
                            return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{members} workers did not join {group} within two minutes")
    finally:
        await admin.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _worker(ctx: BenchContext, prefix: str) -> AsyncIterator[int]:
    """``siyu-journey serve --role worker`` in a process of its own, as deployed; yields its pid once it serves."""
    port = _free_port()
    env = {**os.environ, **ctx.stack.env(), "JOURNEY_KAFKA_TOPIC_PREFIX": prefix, "JOURNEY_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "siyu_journey", "serve", "--role", "worker", "--port", str(port)),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                if proc.returncode is not None:
                    raise RuntimeError(f"journey worker exited with {proc.returncode}")
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("journey worker did not serve /healthz within 60 s")
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _journey(journey_id: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": journey_id,
        "name": journey_id,
        "trigger": {"event": "contact.added"},
        "steps": steps,
        "templates": {"hello": "你好，我是{{ persona }}"},
        "persona": "小完子",
    }


async def _publish(http: Any, app: Any, tenant: str, definition: dict[str, Any]) -> None:
    async with unit_of_work(app.state.runtime.sessions) as session:
        key = (await issue_key(session, tenant=tenant, scopes=("admin",), name="bench")).plaintext
    headers = {"Authorization": f"Bearer {key}"}
    made = await http.post("/v1/journeys", json=definition, headers=headers)
    assert made.status_code == 201, made.text
    done = await http.post(f"/v1/journeys/{definition['id']}/versions/1/publish", headers=headers)
    assert done.status_code == 200, done.text
    # No caps in the way of a benchmark of the machinery, and quiet hours away from the time of the run.
    policy = {"daily_cap": {}, "weekly_cap": {}, **_quiet_hours_away_from_now()}
    done = await http.put("/v1/guardrails", json=policy, headers=headers)
    assert done.status_code == 200, done.text


async def _delivered(sessions: Any, tenant: str) -> int:
    async with unit_of_work(sessions) as session:
        return int(await session.scalar(select(func.count()).where(sandbox_deliveries.c.tenant == tenant)) or 0)


async def _until_delivered(sessions: Any, tenant: str, n: int) -> None:
    await eventually(lambda: _reached(sessions, tenant, n), timeout_s=600, interval_s=0.1)


async def _reached(sessions: Any, tenant: str, n: int) -> bool:
    return await _delivered(sessions, tenant) >= n


async def _until_fired(sessions: Any, tenant: str, n: int) -> None:
    """``_until_delivered`` for a backlog: counting 10^5 deliveries ten times a second would cost the database
    as much as the work measured, so first wait (cheaply: the due-timer index) until none of the tenant's timers
    is left (a timer is deleted in the transaction that fires it), then count as before."""
    await eventually(lambda: _none_waiting(sessions, tenant), timeout_s=600, interval_s=0.1)
    await _until_delivered(sessions, tenant, n)


async def _none_waiting(sessions: Any, tenant: str) -> bool:
    """No index holds the enrolments' status (their updates are HOT, journey_0005), so "no active enrolment"
    would read every completed one on each probe; the due timers are what is left to fire."""
    async with unit_of_work(sessions) as session:
        return not await session.scalar(
            select(exists().where(timers.c.due_at <= func.now(), timers.c.tenant == tenant))
        )


async def _outbox_drained(sessions: Any) -> bool:
    async with unit_of_work(sessions) as session:
        return not await session.scalar(text("SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)"))


async def timers_due_at_once(ctx: BenchContext) -> list[Figure]:
    n = ctx.scaled(100_000)
    tenant = f"bench{uuid4().hex[:6]}"
    prefix = await ctx.fresh_topics()
    engine = create_engine(ctx.stack.service_dsn("journey"), schema="journey", pool_size=4)
    sessions = session_factory(engine)
    try:
        # Ceiling: n rows through plain batched INSERTs (500 a statement, like the workers' batches).
        started = time.perf_counter()
        ceiling_tenant = f"{tenant}-ceiling"
        async with engine.begin() as conn:
            for first in range(0, n, 500):
                await conn.execute(
                    sandbox_deliveries.insert(),
                    [
                        {
                            "touch_id": f"{ceiling_tenant}-{i}",
                            "tenant": ceiling_tenant,
                            "person_id": f"p{i}",
                            "channel": "wecom_1v1",
                            "body": "你好",
                        }
                        for i in range(first, min(n, first + 500))
                    ],
                )
        ceiling_s = time.perf_counter() - started
        async with engine.begin() as conn:
            await conn.execute(sandbox_deliveries.delete().where(sandbox_deliveries.c.tenant == ceiling_tenant))

        async with running_service("journey", ctx.stack, topic_prefix=prefix, role="api") as (app, http):
            await _publish(
                http,
                app,
                tenant,
                _journey(
                    "bench",
                    [
                        {"id": "wait", "kind": "wait", "seconds": 60},
                        {"id": "hello", "kind": "send", "template": "hello"},
                    ],
                ),
            )
        entered = datetime.now(UTC) - timedelta(minutes=2)
        async with unit_of_work(sessions) as session:
            # Each person is a WeCom friend of staff-1 (1v1 reaches only friends), as after an add-friend.
            await session.execute(
                text(
                    "INSERT INTO people (tenant, person_id, owner_staff_id, external_userid, updated_at) "
                    "SELECT CAST(:t AS text), 'p' || i, 'staff-1', 'wm' || i, :t0 FROM generate_series(1, :n) AS i"
                ),
                {"t": tenant, "n": n, "t0": entered},
            )
            await session.execute(
                text(
                    """
                    INSERT INTO enrolments (enrolment_id, tenant, journey_id, version, person_id, entry_key, status,
                                            step_id, visits, entered_at, updated_at)
                    SELECT CAST(:t AS text) || '-' || i, CAST(:t AS text), 'bench', 1, 'p' || i, 'once',
                           'active', 'wait', '{"wait": 1}',
                           :t0, :t0
                    FROM generate_series(1, :n) AS i
                    """
                ),
                {"t": tenant, "n": n, "t0": entered},
            )
        async with contextlib.AsyncExitStack() as running:
            pids = [await running.enter_async_context(_worker(ctx, prefix)) for _ in range(TIMER_WORKERS)]
            cpu = sum(process_cpu_s(pid) for pid in pids)
            # The workers are polling; every timer becomes due (a minute ago) when this commits.
            async with unit_of_work(sessions) as session:
                await session.execute(
                    text(
                        "INSERT INTO timers (tenant, enrolment_id, step_id, due_at) "
                        "SELECT CAST(:t AS text), CAST(:t AS text) || '-' || i, 'wait', :due "
                        "FROM generate_series(1, :n) AS i"
                    ),
                    {"t": tenant, "n": n, "due": entered + timedelta(seconds=60)},
                )
            started = time.perf_counter()
            await _until_fired(sessions, tenant, n)
            elapsed = time.perf_counter() - started
            cpu_ms = (sum(process_cpu_s(pid) for pid in pids) - cpu) / n * 1000
            # Untimed: let the relays publish the touch events before the workers stop, so the backlog does not
            # land on whatever runs next.
            await eventually(lambda: _outbox_drained(sessions), timeout_s=600, interval_s=0.5)
    finally:
        await engine.dispose()
    return [
        Figure(
            SUITE,
            f"{n:,} timers due at once → sandbox (wall time)",
            elapsed,
            "s",
            higher_is_better=False,
            ceiling=ceiling_s,
            ceiling_label=f"{n:,} rows by batched INSERT",
            target=20.0,
            notes=f"{n / elapsed:,.0f} timers/s fired and delivered by {TIMER_WORKERS} worker processes; "
            f"worker CPU {cpu_ms:.2f} ms per timer",
        )
    ]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _paced(count: int, rate: float, send: Any) -> None:
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(i)


async def kafka_round_trip(ctx: BenchContext, *, count: int, rate: float) -> list[float]:
    """The ceiling: produce → consume latency of a bare consumer on the same broker, same rate."""
    topic = f"{await ctx.fresh_topics()}{Topic.CONTACTS.value}"
    producer = AIOKafkaProducer(bootstrap_servers=ctx.stack.bootstrap_servers, linger_ms=0)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=ctx.stack.bootstrap_servers, group_id=None, auto_offset_reset="earliest"
    )
    await producer.start()
    await consumer.start()
    latencies: list[float] = []
    try:
        # Warm up: the consumer has its partitions and has fetched once before anything is timed.
        await producer.send_and_wait(topic, value=b"warm-up", key=b"w")
        while not await consumer.getmany(timeout_ms=200):
            pass

        async def send(i: int) -> None:
            await producer.send(topic, value=str(time.time()).encode(), key=str(i).encode())

        async def receive() -> None:
            while len(latencies) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    now = time.time()
                    latencies.extend(now - float(r.value) for r in records)

        await asyncio.gather(_paced(count, rate, send), receive())
    finally:
        await producer.stop()
        await consumer.stop()
    return latencies


def _contact_added(tenant: str, i: int) -> tuple[bytes, bytes | None]:
    person = f"p{i}"
    event = envelope(
        ContactAdded(
            person_id=person,
            external_userid=f"wm{i}",
            staff_id="staff-1",
            occurred_at=datetime.now(UTC),
            source=SourceRef(channel="wecom"),
        ),
        tenant=tenant,
        subject=person,
        source="/bench",
    )
    return event.to_json(), event.key


async def _load_generator(bootstrap_servers: str, topic: str, tenant: str, count: int, rate: float) -> None:
    """The paced producer, in a process of its own (``python -m bench.journey``), as upstream services are: it
    says ``ready`` once connected, paces ``count`` events at ``rate`` on ``go``, then prints when each was sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=0, enable_idempotence=True)
    await producer.start()
    sent_at: dict[str, float] = {}
    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)

        async def send(i: int) -> None:
            value, key = _contact_added(tenant, i)
            sent_at[f"p{i}"] = time.time()
            await producer.send(topic, value=value, key=key)

        await _paced(count, rate, send)
        await producer.flush()
    finally:
        await producer.stop()
    print(json.dumps(sent_at), flush=True)


async def event_to_touch_latency(ctx: BenchContext) -> list[Figure]:
    rate = 300.0
    count = max(30, ctx.scaled(int(rate * 20)))
    tenant = f"bench{uuid4().hex[:6]}"
    prefix = await ctx.fresh_topics()
    topics = TopicNames(prefix)
    ceiling = await kafka_round_trip(ctx, count=count, rate=rate)
    # The events come from another process (upstream services produce them, not the journey worker): the load
    # generator's own work stays off the worker's event loop, as in a deployment.
    generator = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.journey",
        ctx.stack.bootstrap_servers,
        topics.name(Topic.CONTACTS),
        tenant,
        str(count),
        str(rate),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert generator.stdin is not None and generator.stdout is not None
    producer = AIOKafkaProducer(bootstrap_servers=ctx.stack.bootstrap_servers, linger_ms=0, enable_idempotence=True)
    await producer.start()
    engine = create_engine(ctx.stack.service_dsn("journey"), schema="journey", pool_size=2)
    sessions = session_factory(engine)
    try:
        assert (await generator.stdout.readline()).strip() == b"ready"
        async with running_service("journey", ctx.stack, topic_prefix=prefix, role="api") as (app, http):
            await _publish(
                http, app, tenant, _journey("latency", [{"id": "hello", "kind": "send", "template": "hello"}])
            )
        async with contextlib.AsyncExitStack() as running:
            pids = [await running.enter_async_context(_worker(ctx, prefix)) for _ in range(LATENCY_WORKERS)]
            await _group_stable(ctx, consumer_group_id(prefix, "journey", "main"), LATENCY_WORKERS)
            # Warm up: every worker has its partitions and touches went through before anything is timed.
            for i in range(1, 13):
                value, key = _contact_added(tenant, -i)
                await producer.send_and_wait(topics.name(Topic.CONTACTS), value=value, key=key)
            await eventually(lambda: _reached(sessions, tenant, 12), timeout_s=120, interval_s=0.1)
            cpu = sum(process_cpu_s(pid) for pid in pids)
            generator.stdin.write(b"go\n")
            await generator.stdin.drain()
            sent_at: dict[str, float] = json.loads(await generator.stdout.read())  # its last words
            await _until_delivered(sessions, tenant, count + 12)
            cpu_ms = (sum(process_cpu_s(pid) for pid in pids) - cpu) / count * 1000
        async with unit_of_work(sessions) as session:
            rows = await session.execute(
                select(sandbox_deliveries.c.person_id, sandbox_deliveries.c.delivered_at).where(
                    sandbox_deliveries.c.tenant == tenant
                )
            )
            latencies = [r.delivered_at.timestamp() - sent_at[r.person_id] for r in rows if r.person_id in sent_at]
    finally:
        await producer.stop()
        await engine.dispose()
        if generator.returncode is None:
            generator.kill()
        await generator.wait()
    notes = (
        f"{count} contact.added events at {rate:.0f}/s, {LATENCY_WORKERS} worker process(es) "
        f"(CPU {cpu_ms:.2f} ms per event)"
    )
    return [
        Figure(
            SUITE,
            "event → touch latency p50",
            _percentile(latencies, 50) * 1000,
            "ms",
            higher_is_better=False,
            ceiling=_percentile(ceiling, 50) * 1000,
            ceiling_label="bare Kafka produce→consume p50",
            notes=notes,
        ),
        Figure(
            SUITE,
            "event → touch latency p99",
            _percentile(latencies, 99) * 1000,
            "ms",
            higher_is_better=False,
            ceiling=_percentile(ceiling, 99) * 1000,
            ceiling_label="bare Kafka produce→consume p99",
            target=500.0,
            notes=notes + f"; mean {statistics.fmean(latencies) * 1000:.0f} ms",
        ),
    ]


async def run(ctx: BenchContext) -> list[Figure]:
    latency = await event_to_touch_latency(ctx)  # first: nothing left over from the timer run competes with it
    return [*await timers_due_at_once(ctx), *latency]


if __name__ == "__main__":
    servers, topic_name, tenant_name, how_many, per_second = sys.argv[1:6]
    asyncio.run(_load_generator(servers, topic_name, tenant_name, int(how_many), float(per_second)))
