"""What a service declares about itself, and the runtime the shared app factory builds from it.

A service's ``bootstrap.py`` returns a ``ServiceSpec``: its settings, routers, consumers and background loops.
Everything else (engine, sessions, producer, outbox relay, consumer runners, readiness, shutdown) is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Literal

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from siyu_shared.db.engine import SessionFactory, create_engine, ping, session_factory
from siyu_shared.db.health import DatabaseProbe
from siyu_shared.events.topics import Topic, consumer_group_id
from siyu_shared.heap import freeze_startup_heap
from siyu_shared.kafka.clients import idempotent_producer, manual_commit_consumer
from siyu_shared.kafka.probe import KafkaProbe
from siyu_shared.kafka.runner import BatchHandling, ConsumerRunner, Handler, RunnerConfig
from siyu_shared.logging import get_logger
from siyu_shared.messaging.relay import OutboxRelay, RelayConfig
from siyu_shared.services import schema_of
from siyu_shared.settings import ServiceSettings

log = get_logger(__name__)

Role = Literal["api", "worker", "all"]
BackgroundLoop = Callable[["Runtime", asyncio.Event], Awaitable[None]]

READINESS: Mapping[Role, tuple[str, ...]] = {
    "api": ("database",),
    "worker": ("database", "kafka"),
    "all": ("database", "kafka"),
}
"""What each role's ``/readyz`` checks: what the role cannot work without. The api role stores what it accepts in
Postgres and leaves Kafka to the worker's outbox relay, so a Kafka outage must not take it out of its Service
(webhooks would be refused that the outbox would have delivered later); the worker consumes and publishes, so it
needs both."""


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """One consumer group of a service: the topics it reads, a handler per event type, and/or a batch handler."""

    name: str
    topics: tuple[Topic, ...]
    handlers: Callable[[Runtime], Mapping[str, Handler]] = lambda _: {}
    batch: Callable[[Runtime], BatchHandling] | None = None


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    title: str
    description: str
    settings: ServiceSettings
    migrations: Path
    routers: Sequence[APIRouter] = ()
    consumers: Sequence[ConsumerSpec] = ()
    background: Sequence[BackgroundLoop] = ()
    version: str = "0.1.0"

    @property
    def schema(self) -> str:
        return schema_of(self.name)


@dataclass
class Runtime:
    """The live resources of one service process."""

    spec: ServiceSpec
    engine: AsyncEngine
    sessions: SessionFactory
    kafka_probe: KafkaProbe
    database: DatabaseProbe
    """Asked after a failure whose exception does not say whether the database is down (fresh connection)."""
    role: Role = "all"
    producer: AIOKafkaProducer | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def settings(self) -> ServiceSettings:
        return self.spec.settings

    def readiness_checks(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """The checks of this role's readiness (``READINESS``), by name."""
        checks: dict[str, Callable[[], Awaitable[None]]] = {
            "database": lambda: ping(self.engine),
            "kafka": self.kafka_probe.check,
        }
        return {name: checks[name] for name in READINESS[self.role]}

    def group_id(self, consumer: str) -> str:
        return consumer_group_id(self.settings.kafka_topic_prefix, self.spec.name, consumer)


def build_runtime(spec: ServiceSpec, role: Role = "all") -> Runtime:
    settings = spec.settings
    engine = create_engine(
        settings.database_url,
        schema=spec.schema,
        pool_size=settings.database_pool_size,
        application_name=spec.name,
    )
    return Runtime(
        spec=spec,
        engine=engine,
        sessions=session_factory(engine),
        kafka_probe=KafkaProbe(settings.kafka_bootstrap_servers),
        database=DatabaseProbe(settings.database_url, timeout_s=settings.readiness_timeout_s),
        role=role,
    )


async def start_runtime(runtime: Runtime, role: Role) -> None:
    if role in ("worker", "all"):
        runtime.tasks.append(asyncio.create_task(_worker(runtime), name=f"{runtime.spec.name}-worker"))


async def stop_runtime(runtime: Runtime, *, grace_s: float = 20.0) -> None:
    """Graceful stop: no new fetches, in-flight batches finish and commit, then clients close."""
    runtime.stop.set()
    if runtime.tasks:
        _, pending = await asyncio.wait(runtime.tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)
    await runtime.kafka_probe.close()
    await runtime.engine.dispose()


async def _worker(runtime: Runtime) -> None:
    """Start the producer (retrying while Kafka is away), then run the relay, consumers and loops."""
    settings = runtime.settings
    producer = idempotent_producer(settings.kafka_bootstrap_servers, client_id=f"{runtime.spec.name}-worker")
    if not await _start_with_retry(producer.start, runtime.stop, what="producer"):
        return
    runtime.producer = producer
    try:
        relay = OutboxRelay(
            config=RelayConfig(
                service=runtime.spec.name,
                schema=runtime.spec.schema,
                batch=settings.outbox_batch,
                poll_interval_s=settings.outbox_poll_interval_s,
                retention=timedelta(hours=settings.outbox_retention_hours),
            ),
            engine=runtime.engine,
            producer=producer,
            database_url=settings.database_url,
        )
        loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [("outbox relay", partial(relay.run, runtime.stop))]
        loops += [(f"consumer {c.name}", partial(_consume, runtime, c, producer)) for c in runtime.spec.consumers]
        loops += [
            (getattr(loop, "__qualname__", repr(loop)), partial(loop, runtime, runtime.stop))
            for loop in runtime.spec.background
        ]
        freeze_startup_heap()  # clients and loops made: what is alive now lives as long as the process
        await asyncio.gather(*(_supervised(name, run, runtime.stop) for name, run in loops))
    finally:
        await producer.stop()


async def _supervised(name: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Run a worker loop until ``stop``; should it end or raise before that, it is started again (with backoff).

    The loops handle outages themselves; this is the net under them, so that one loop's unexpected crash neither
    stops the others (``gather`` would stop the producer under them) nor leaves a process that looks alive and
    does nothing."""
    delay = 0.5
    while not stop.is_set():
        try:
            await run()
        except Exception as exc:
            log.error("worker_loop_crashed", loop=name, error=repr(exc), exc_info=True)
        else:
            if stop.is_set():
                return
            log.error("worker_loop_ended", loop=name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(10.0, delay * 2)


async def _consume(runtime: Runtime, spec: ConsumerSpec, producer: AIOKafkaProducer) -> None:
    settings = runtime.settings
    group = runtime.group_id(spec.name)
    consumer = manual_commit_consumer(
        settings.kafka_bootstrap_servers,
        group_id=group,
        client_id=group,
        max_batch=settings.consumer_max_batch,
    )
    if not await _start_with_retry(consumer.start, runtime.stop, what=f"consumer {group}"):
        return
    runner = ConsumerRunner(
        config=RunnerConfig(
            group_id=group,
            topics=tuple(settings.topics.name(t) for t in spec.topics),
            max_batch=settings.consumer_max_batch,
            max_attempts=settings.consumer_max_attempts,
            retry_backoff_s=settings.consumer_retry_backoff_s,
        ),
        consumer=consumer,
        producer=producer,
        sessions=runtime.sessions,
        handlers=spec.handlers(runtime),
        batch=spec.batch(runtime) if spec.batch is not None else None,
        database=runtime.database,
    )
    try:
        await runner.run(runtime.stop)
    finally:
        await consumer.stop()


async def _start_with_retry(start: Callable[[], Awaitable[None]], stop: asyncio.Event, *, what: str) -> bool:
    delay = 0.5
    while not stop.is_set():
        try:
            await start()
            return True
        except Exception as exc:
            log.warning("kafka_start_retry", what=what, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(10.0, delay * 2)
    return False
