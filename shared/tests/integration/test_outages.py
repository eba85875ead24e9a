"""A database outage is not the event's fault nor the request's: consumers pause and go on when it is back, routes
answer 503 with Retry-After. Decided by asking the database, whatever class the failure has.

Runs on a Postgres of its own (Kafka is the session's), so stopping it does not disturb the other tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import APIRouter, Request
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_devstack.postgres import EmbeddedPostgres
from siyu_devstack.stack import Stack
from siyu_devstack.testing import Message, Scratch, effects, eventually, read_topic
from siyu_shared.app import RETRY_AFTER_S, create_app
from siyu_shared.db.health import DatabaseProbe
from siyu_shared.events.catalog import GroupJoined
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import envelope
from siyu_shared.kafka.clients import manual_commit_consumer
from siyu_shared.kafka.runner import ConsumerRunner, Handler, Received, RunnerConfig
from siyu_shared.service import ServiceSpec
from siyu_shared.settings import ServiceSettings

from .conftest import scratch_schema

pytestmark = pytest.mark.integration

DOWNTIME_S = 4.0
"""How long the database stays stopped: well past the ~1.4 s an event's retries used to last."""
STRADDLE_S = 60


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("outage")) / "data", fast=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def own_scratch(own_postgres: EmbeddedPostgres, stack: Stack) -> AsyncIterator[Scratch]:
    """A scratch schema (platform tables, ``effects``) on the private Postgres, and private topics."""
    async with scratch_schema(own_postgres.admin_dsn, stack.bootstrap_servers, notify=False) as scratch:
        yield scratch


def joined(person: str) -> CloudEvent:
    data = GroupJoined(person_id=person, chat_id="wr_chat", join_scene=0, occurred_at=datetime.now(UTC))
    return envelope(data, tenant="glowlab", subject=person, source="/test")


async def effect_counts(scratch: Scratch) -> dict[str, int]:
    async with scratch.engine.connect() as conn:
        rows = await conn.execute(select(effects.c.event_id, func.count()).group_by(effects.c.event_id))
        return {event_id: count for event_id, count in rows.all()}


async def dead_letters(scratch: Scratch) -> list[Message]:
    return await read_topic(scratch.bootstrap, scratch.topics.dlq(GroupJoined.topic), idle_s=0.5)


def runner(
    scratch: Scratch, producer: AIOKafkaProducer, handler: Handler, database: DatabaseProbe | None = None
) -> tuple[ConsumerRunner, AIOKafkaConsumer]:
    consumer = manual_commit_consumer(scratch.bootstrap, group_id=f"{scratch.schema}.g", client_id="t", max_batch=50)
    config = RunnerConfig(
        group_id="g",
        topics=(scratch.topics.name(GroupJoined.topic),),
        max_attempts=3,
        retry_backoff_s=0.01,
        poll_timeout_ms=200,
    )
    run = ConsumerRunner(
        config=config,
        consumer=consumer,
        producer=producer,
        sessions=scratch.sessions,
        handlers={GroupJoined.event_type: handler},
        database=database,
    )
    return run, consumer


async def send(producer: AIOKafkaProducer, scratch: Scratch, events: list[CloudEvent]) -> None:
    topic = scratch.topics.name(GroupJoined.topic)
    for event in events:
        await producer.send(topic, value=event.to_json(), key=event.key)
    await producer.flush()


async def test_a_consumer_pauses_through_a_database_restart_and_dead_letters_nothing(
    own_postgres: EmbeddedPostgres, own_scratch: Scratch, producer: AIOKafkaProducer
) -> None:
    scratch = own_scratch
    failures: list[str] = []
    before = [joined(f"p{i}") for i in range(600)]
    during = [joined(f"q{i}") for i in range(100)]
    straddler = before[100].id
    """Its first handling runs a statement that lasts until the database stops, so the stop cuts a handler off."""

    async def handler(event: Received[GroupJoined], session: AsyncSession) -> None:
        try:
            if event.envelope.id == straddler and not failures:
                await session.execute(text(f"SELECT pg_sleep({STRADDLE_S})"))
            await session.execute(text("SELECT pg_sleep(0.005)"))
            await session.execute(insert(effects).values(event_id=event.envelope.id, person_id=event.data.person_id))
        except Exception as exc:
            # Whatever the driver raised, the runner sees a class that says nothing about outages.
            failures.append(repr(exc)[:200])
            raise RuntimeError("the handler failed") from None

    await send(producer, scratch, before)
    run, consumer = runner(scratch, producer, handler)
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(run.run(stop))
    expected = {e.id for e in before + during}
    try:
        await eventually(lambda: _straddling(own_postgres), timeout_s=30)
        await asyncio.to_thread(own_postgres.stop)  # fast shutdown: the statements in flight are cut off
        await send(producer, scratch, during)
        await asyncio.sleep(DOWNTIME_S)  # the outage itself (nothing to wait for: the server is down)
        assert failures, "the stop cut no handler off"
        await asyncio.to_thread(own_postgres.start)
        await eventually(lambda: _has(scratch, expected), timeout_s=60, interval_s=0.5)
    finally:
        stop.set()
        await task
        await consumer.stop()
        if not own_postgres.running:
            await asyncio.to_thread(own_postgres.start)
    assert await effect_counts(scratch) == dict.fromkeys(expected, 1)
    assert await dead_letters(scratch) == []


async def _straddling(server: EmbeddedPostgres) -> bool:
    """Whether the straddler's long statement is running."""
    conn = await asyncpg.connect(server.admin_dsn)
    try:
        running = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = $1",
            f"SELECT pg_sleep({STRADDLE_S})",
        )
    finally:
        await conn.close()
    return bool(running)


class ScriptedProbe(DatabaseProbe):
    """The database as the runner is told it is: while ``flapping``, down on every other question (each failure is
    asked about and found down, then the wait for the database finds it back), else up."""

    def __init__(self) -> None:
        super().__init__("postgresql://unused@127.0.0.1:1/x")
        self.flapping = True
        self.asked = 0

    async def healthy(self, *, since: float | None = None) -> bool:
        self.asked += 1
        return not self.flapping or self.asked % 2 == 0


async def test_only_a_failure_against_a_database_that_answers_counts_as_an_attempt(
    own_scratch: Scratch, producer: AIOKafkaProducer
) -> None:
    """An event failing four times (one more than its three attempts) while the database is found down each time
    goes through on the fifth; an event failing while the database answers is dead-lettered after three."""
    scratch = own_scratch
    probe = ScriptedProbe()
    calls: dict[str, int] = {}

    async def handler(event: Received[GroupJoined], session: AsyncSession) -> None:
        person = event.data.person_id
        calls[person] = calls.get(person, 0) + 1
        if person == "bug" or calls[person] <= 4:
            raise RuntimeError("failed")
        await session.execute(insert(effects).values(event_id=event.envelope.id, person_id=person))

    outage, bug = joined("outage"), joined("bug")
    run, consumer = runner(scratch, producer, handler, database=probe)
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(run.run(stop))
    try:
        await send(producer, scratch, [outage])
        await eventually(lambda: _has(scratch, {outage.id}), timeout_s=30)
        assert calls["outage"] == 5
        assert await dead_letters(scratch) == []
        probe.flapping = False
        await send(producer, scratch, [bug])
        (letter,) = await eventually(lambda: dead_letters(scratch), timeout_s=30)
    finally:
        stop.set()
        await task
        await consumer.stop()
    assert calls["bug"] == 3
    assert letter[2]["siyu-attempts"] == b"3"


async def test_a_route_answers_503_with_retry_after_while_the_database_is_down(
    own_postgres: EmbeddedPostgres, stack: Stack
) -> None:
    """Any storage failure a route lets through is a 503 with Retry-After while the database is down, whatever
    its class; against a database that answers, a bug stays a 500."""
    router = APIRouter()

    @router.get("/v1/rows")
    async def rows(request: Request) -> dict[str, int]:
        async with request.app.state.runtime.sessions() as session:
            return {"one": int(await session.scalar(text("SELECT 1")))}

    @router.get("/v1/bug")
    async def bug(request: Request) -> dict[str, int]:
        async with request.app.state.runtime.sessions() as session:
            try:
                await session.execute(text("SELECT * FROM no_such_table"))
            except Exception:
                raise RuntimeError("a bug, or an outage: the class does not say") from None
        return {}

    settings = ServiceSettings(database_url=own_postgres.admin_dsn, kafka_bootstrap_servers=stack.bootstrap_servers)
    spec = ServiceSpec(
        name="attribution", title="t", description="t", settings=settings, migrations=Path("."), routers=[router]
    )
    app = create_app(spec, role="api")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.get("/v1/rows")).status_code == 200
        assert (await http.get("/v1/bug")).status_code == 500
        await asyncio.to_thread(own_postgres.stop)
        try:
            for path in ("/v1/rows", "/v1/bug"):
                reply = await http.get(path)
                assert (reply.status_code, reply.headers.get("retry-after")) == (503, str(RETRY_AFTER_S)), path
        finally:
            await asyncio.to_thread(own_postgres.start)
        assert (await http.get("/v1/rows")).status_code == 200

        async def a_bug_again() -> bool:  # (a "down" answer is reused for a moment after its probe)
            return (await http.get("/v1/bug")).status_code == 500

        await eventually(a_bug_again, timeout_s=10)


async def _has(scratch: Scratch, ids: set[str]) -> bool:
    return ids <= set(await effect_counts(scratch))
