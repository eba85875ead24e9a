"""Journey benchmarks.

1. 100,000 timers due at once fired to the sandbox sender: enrolments parked on a wait, all due, a fresh worker
   starts; time until every touch is delivered (timer fired → touch queued → guardrails → sandbox → outcome +
   event in the outbox). Ceiling: the same number of rows written by plain batched INSERTs on the same database,
   the least any design that records each fired touch must do.
2. Event → touch latency for an immediate step at 300 events/s: contact.added produced to Kafka (by a load
   generator in a process of its own, as upstream services are) → greeting delivered to the sandbox (its row's
   commit time). Ceiling: a bare produce → consume round trip through the same broker at the same rate.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import exists, func, select, text

from bench.harness import BenchContext, Figure
from siyu_devstack.testing import eventually, running_service
from siyu_journey.adapters.tables import enrolments, sandbox_deliveries
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import create_engine, session_factory, unit_of_work
from siyu_shared.events.catalog import ContactAdded, SourceRef
from siyu_shared.events.registry import envelope
from siyu_shared.events.topics import Topic, TopicNames

SUITE = "journey"
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai: outside quiet hours


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


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
    # No caps in the way of a benchmark of the machinery.
    await http.put("/v1/guardrails", json={"daily_cap": {}, "weekly_cap": {}}, headers=headers)


async def _delivered(sessions: Any, tenant: str) -> int:
    async with unit_of_work(sessions) as session:
        return int(await session.scalar(select(func.count()).where(sandbox_deliveries.c.tenant == tenant)) or 0)


async def _until_delivered(sessions: Any, tenant: str, n: int) -> None:
    await eventually(lambda: _reached(sessions, tenant, n), timeout_s=600, interval_s=0.1)


async def _reached(sessions: Any, tenant: str, n: int) -> bool:
    return await _delivered(sessions, tenant) >= n


async def _until_fired(sessions: Any, tenant: str, n: int) -> None:
    """``_until_delivered`` for a backlog: counting 10^5 deliveries ten times a second would cost the database
    as much as the work measured, so first wait (cheaply: an index probe) until no enrolment is left waiting,
    then count as before."""
    await eventually(lambda: _none_waiting(sessions, tenant), timeout_s=600, interval_s=0.1)
    await _until_delivered(sessions, tenant, n)


async def _none_waiting(sessions: Any, tenant: str) -> bool:
    async with unit_of_work(sessions) as session:
        return not await session.scalar(
            select(
                exists().where(
                    enrolments.c.tenant == tenant, enrolments.c.journey_id == "bench", enrolments.c.status == "active"
                )
            )
        )


async def _outbox_drained(sessions: Any) -> bool:
    async with unit_of_work(sessions) as session:
        return not await session.scalar(text("SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)"))


async def timers_due_at_once(ctx: BenchContext) -> list[Figure]:
    n = ctx.scaled(100_000)
    tenant = f"bench{uuid4().hex[:6]}"
    prefix = await ctx.fresh_topics()
    clock = Clock(T0)
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

        async with running_service("journey", ctx.stack, topic_prefix=prefix, clock=clock, role="api") as (app, http):
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
        async with unit_of_work(sessions) as session:
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
                {"t": tenant, "n": n, "t0": T0},
            )
            await session.execute(
                text(
                    "INSERT INTO timers (tenant, enrolment_id, step_id, due_at) "
                    "SELECT CAST(:t AS text), CAST(:t AS text) || '-' || i, 'wait', :due "
                    "FROM generate_series(1, :n) AS i"
                ),
                {"t": tenant, "n": n, "due": T0 + timedelta(seconds=60)},
            )
        clock.now = T0 + timedelta(hours=1)
        started = time.perf_counter()
        async with running_service("journey", ctx.stack, topic_prefix=prefix, clock=clock):
            await _until_fired(sessions, tenant, n)
            elapsed = time.perf_counter() - started
            # Untimed: let the relay publish the touch events before this worker stops, so the backlog does not
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
            notes=f"{n / elapsed:,.0f} timers/s fired and delivered",
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
    try:
        assert (await generator.stdout.readline()).strip() == b"ready"
        async with running_service("journey", ctx.stack, topic_prefix=prefix) as (app, http):
            await _publish(
                http, app, tenant, _journey("latency", [{"id": "hello", "kind": "send", "template": "hello"}])
            )
            sessions = app.state.runtime.sessions
            # Warm up: the consumer group has joined and a first touch went through before anything is timed.
            value, key = _contact_added(tenant, -1)
            await producer.send_and_wait(topics.name(Topic.CONTACTS), value=value, key=key)
            await _until_delivered(sessions, tenant, 1)
            generator.stdin.write(b"go\n")
            await generator.stdin.drain()
            sent_at: dict[str, float] = json.loads(await generator.stdout.read())  # its last words
            await _until_delivered(sessions, tenant, count + 1)
            async with unit_of_work(sessions) as session:
                rows = await session.execute(
                    select(sandbox_deliveries.c.person_id, sandbox_deliveries.c.delivered_at).where(
                        sandbox_deliveries.c.tenant == tenant
                    )
                )
                latencies = [r.delivered_at.timestamp() - sent_at[r.person_id] for r in rows if r.person_id in sent_at]
    finally:
        await producer.stop()
        if generator.returncode is None:
            generator.kill()
        await generator.wait()
    notes = f"{count} contact.added events at {rate:.0f}/s"
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
