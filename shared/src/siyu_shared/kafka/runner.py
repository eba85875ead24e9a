"""The Kafka consumer runner every service's worker uses.

Per batch: messages are grouped by partition (so per-key order holds), each partition's messages are handled
in one database transaction (a savepoint per event handled one by one), the inbox records every event id in it,
and the partition's offset is committed only after the transaction commits. A failing event is retried with
backoff, then sent to ``<topic>.dlq`` with the error in headers, and the partition moves on. An outage
(database or Kafka down) is not the event's fault: the batch is retried until it goes through, never
dead-lettered. SIGTERM (via ``stop``) finishes the batches in flight, commits, and closes.

What is an outage is decided by asking the database, not only by the exception's class: after any failure the
class does not already mark as an outage (``is_infrastructure_failure``), a fresh connection probes the database
(``DatabaseProbe``). If the probe fails, the attempt does not count: the partition pauses (its batch waits, probing
with backoff, until the database answers) and then starts its batch over in a new transaction. Only a failure
against a database that answers counts as an attempt, so only an event that fails against a healthy database is
dead-lettered. Attempts are counted per record across those restarts.

Partitions are pipelined: each partition number's batch runs as a task of its own, and the fetch loop keeps
fetching for the partitions that have none in flight, so a batch never waits for another partition's transaction
(a slow partition holds up only itself). A partition is not fetched from while its batch is in flight, so its
records are still handled one batch after the other, in order; a revoke waits for every batch in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from siyu_shared.db.engine import SessionFactory
from siyu_shared.db.health import DatabaseProbe, is_outage
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import UnknownEventType, parse_data
from siyu_shared.events.topics import dlq_name
from siyu_shared.kafka.errors import PoisonEvent, is_infrastructure_failure
from siyu_shared.kafka.headers import dead_letter_headers
from siyu_shared.kafka.received import Received
from siyu_shared.logging import get_logger
from siyu_shared.messaging.aliases import follow_merges
from siyu_shared.messaging.inbox import claim_event, claim_events
from siyu_shared.metrics import CONSUMER_LAG, HANDLER_LATENCY, HANDLER_OUTCOMES

log = get_logger(__name__)

__all__ = ["BatchHandler", "BatchHandling", "ConsumerRunner", "Handler", "Received", "RunnerConfig"]

Handler = Callable[[Received[Any], AsyncSession], Awaitable[None]]
BatchHandler = Callable[[list[Received[Any]], AsyncSession], Awaitable[None]]
Fetched = Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass(frozen=True, slots=True)
class BatchHandling:
    """Handle a partition's events of ``types`` in one call (in partition order), for throughput.

    The inbox is claimed for the whole batch at once, in the partition's transaction. If the call raises, that
    transaction is rolled back and the runner handles the slice again in a new one, one call per event
    (``handler([event], session)``, each in a savepoint), so a bad event is retried and dead-lettered alone while
    the rest of the batch goes through.
    """

    types: frozenset[str]
    handler: BatchHandler


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    group_id: str
    topics: tuple[str, ...]
    max_batch: int = 500
    max_attempts: int = 4
    retry_backoff_s: float = 0.2
    poll_timeout_ms: int = 500


class ConsumerRunner:
    def __init__(
        self,
        *,
        config: RunnerConfig,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        sessions: SessionFactory,
        handlers: Mapping[str, Handler],
        batch: BatchHandling | None = None,
        database: DatabaseProbe | None = None,
    ) -> None:
        """``database`` probes the database after a failure (default: a probe of the sessions' engine's URL)."""
        self._config = config
        self._consumer = consumer
        self._producer = producer
        self._sessions = sessions
        self._database_probe = database
        self._attempts: dict[tuple[str, int, int], _Attempts] = {}
        """Failed attempts against a healthy database, per record (topic, partition, offset) of a slice in flight:
        kept when the slice starts over in a new transaction, dropped when it is done."""
        self._handlers = dict(handlers)
        self._batch = batch
        if batch is not None:
            overlap = set(self._handlers) & batch.types
            if overlap:
                raise ValueError(f"event types handled both one by one and in batches: {sorted(overlap)}")
            for event_type in batch.types:
                self._handlers[event_type] = _one_at_a_time(batch.handler)
        self._in_flight = _InFlight()

    @property
    def _database(self) -> DatabaseProbe:
        if self._database_probe is None:
            self._database_probe = _probe_of(self._sessions)
        return self._database_probe

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set. The consumer and producer are started by the caller's lifecycle."""
        self._consumer.subscribe(list(self._config.topics), listener=_FinishBatchOnRevoke(self._in_flight))
        failures = 0
        try:
            while not stop.is_set():
                try:
                    for slice_ in _by_partition_number(await self._fetch(stop)):
                        self._in_flight.start(slice_, self._run_partition_safely(slice_, stop))
                    failures = 0
                except Exception as exc:
                    failures += 1
                    log.warning("consumer_loop_error", group=self._config.group_id, error=repr(exc))
                    await _sleep_or_stop(stop, min(5.0, 0.2 * 2**failures))
        finally:
            await self._in_flight.drain()  # the batches in flight finish and commit before the consumer closes

    async def _fetch(self, stop: asyncio.Event) -> Fetched:
        """Records of the partitions with no batch in flight: as soon as any arrive, a batch in flight finishes
        (its partition may have records waiting), ``stop`` is set, or the poll timeout passes."""
        timeout_ms, max_records = self._config.poll_timeout_ms, self._config.max_batch
        if self._in_flight.paused:  # a rebalance is waiting for the batches in flight: start no new ones
            await _sleep_or_stop(stop, 0.05)
            return {}
        busy = self._in_flight.partitions()
        if not busy:
            fetched: Fetched = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
            return fetched
        idle = [tp for tp in self._consumer.assignment() if tp.partition not in busy]
        self._in_flight.changed.clear()
        waits: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._in_flight.changed.wait()),
            asyncio.ensure_future(stop.wait()),
        ]
        fetch = None
        if idle:  # (getmany() with no partitions would mean all of them)
            fetch = asyncio.ensure_future(self._consumer.getmany(*idle, timeout_ms=timeout_ms, max_records=max_records))
            waits.append(fetch)
        try:
            await asyncio.wait(waits, timeout=timeout_ms / 1000, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()  # a fetch still waiting has drained nothing yet: cancelling it loses no record
        if fetch is not None and fetch.done() and not fetch.cancelled():
            fetched = fetch.result()
            return fetched
        return {}

    async def _run_partition_safely(self, slice_: _PartitionSlice, stop: asyncio.Event) -> None:
        """``_run_partition``; should it fail unexpectedly, its records are fetched again (after a pause)."""
        try:
            await self._run_partition(slice_, stop)
        except Exception as exc:
            log.warning("partition_batch_error", partition=slice_.partition, error=repr(exc))
            with contextlib.suppress(IllegalStateError, AssertionError):
                for tp, first in slice_.first_offsets.items():
                    self._consumer.seek(tp, first)
            await _sleep_or_stop(stop, 1.0)

    async def _run_partition(self, slice_: _PartitionSlice, stop: asyncio.Event) -> None:
        """One transaction for everything fetched from one partition number, across the group's topics.

        Every topic is keyed by person id with the same partition count, so partition N of each topic holds the
        same persons; handling them together (in timestamp order) means one person's order and touch are never
        handled in two concurrent transactions that cannot see each other.
        """
        try:
            if not await self._run_transactions(slice_, stop):
                return
        finally:
            for record in slice_.records:
                self._attempts.pop(_record_key(record), None)
        with contextlib.suppress(CommitFailedError, IllegalStateError):
            # After a rebalance the commit may be refused; the next owner re-reads and the inbox absorbs it.
            await self._consumer.commit(slice_.next_offsets)
        for tp, next_offset in slice_.next_offsets.items():
            self._report_lag(tp, next_offset)

    async def _run_transactions(self, slice_: _PartitionSlice, stop: asyncio.Event) -> bool:
        """The slice's transaction, started over until it commits (True), or abandoned (False: offsets sought back,
        the records come again). During an outage it waits, probing with backoff, until the database answers."""
        failures = 0
        batch = self._batch
        while True:
            try:
                async with self._sessions() as session, session.begin():
                    if batch is not None:
                        await self._handle_batch(session, slice_.records, batch)
                    else:
                        for record in slice_.records:
                            await self._handle_record(session, record)
                return True
            except _BatchFailed as failed:
                # Rolled back (the inbox claims with it): the slice again, one event at a time, in a new transaction.
                log.warning(
                    "batch_failed_retrying_one_by_one",
                    group=self._config.group_id,
                    size=failed.size,
                    error=repr(failed.__cause__),
                )
                batch = None
            except _TransactionLost as lost:
                # The database answers but this transaction cannot go on (its connection was lost): a new one.
                log.warning("partition_transaction_lost", partition=slice_.partition, error=repr(lost.__cause__))
            except Exception as exc:
                failed_at = time.monotonic()
                outage = isinstance(exc, _Outage) or await is_outage(exc, self._database, since=failed_at)
                if stop.is_set() or not outage:
                    # Shutting down, or not retriable here: leave the offsets uncommitted; the records come back.
                    log.warning("partition_batch_abandoned", partition=slice_.partition, error=repr(exc))
                    for tp, first in slice_.first_offsets.items():
                        self._consumer.seek(tp, first)
                    await _sleep_or_stop(stop, 1.0)  # the same failure again at once would spin
                    return False
                failures += 1
                cause = exc.__cause__ if isinstance(exc, _Outage) else exc
                log.warning(
                    "partition_paused_outage",
                    group=self._config.group_id,
                    partition=slice_.partition,
                    failures=failures,
                    error=repr(cause),
                )
                await _sleep_or_stop(stop, min(5.0, 0.1 * 2**failures))
                await self._database.wait_until_healthy(stop)

    async def _handle_batch(
        self, session: AsyncSession, records: list[ConsumerRecord[bytes, bytes]], batch: BatchHandling
    ) -> None:
        group = self._config.group_id
        decoded: list[Received[Any]] = []
        for record in records:
            try:
                event = _decode(record)
                if event.type not in batch.types:
                    HANDLER_OUTCOMES.labels(group, "ignored").inc()
                    continue
                decoded.append(Received(envelope=event, data=parse_data(event)))
            except (PoisonEvent, ValidationError, UnknownEventType) as exc:
                await self._dead_letter(record, exc, attempts=0)
        if not decoded:
            return
        started = time.perf_counter()
        # No savepoint: nothing else is in this transaction, so a failure rolls it all back (``_BatchFailed``) and
        # the caller handles the slice again one event at a time: two round trips fewer on every batch.
        try:
            fresh_ids = await claim_events(session, consumer=group, event_ids=[r.envelope.id for r in decoded])
            fresh: list[Received[Any]] = []
            for received in decoded:
                if received.envelope.id in fresh_ids:
                    fresh_ids.discard(received.envelope.id)  # a copy later in the same batch is a duplicate
                    fresh.append(received)
            if fresh:
                await batch.handler(await follow_merges(session, fresh), session)
        except Exception as exc:
            if is_infrastructure_failure(exc):
                raise
            if not await self._database.healthy(since=time.monotonic()):
                raise _Outage() from exc
            raise _BatchFailed(len(decoded)) from exc
        HANDLER_OUTCOMES.labels(group, "ok").inc(len(fresh))
        HANDLER_OUTCOMES.labels(group, "duplicate").inc(len(decoded) - len(fresh))
        HANDLER_LATENCY.labels(group, "batch").observe(time.perf_counter() - started)

    async def _handle_record(self, session: AsyncSession, record: ConsumerRecord[bytes, bytes]) -> None:
        group = self._config.group_id
        try:
            event = _decode(record)
            handler = self._handlers.get(event.type)
            if handler is None:
                HANDLER_OUTCOMES.labels(group, "ignored").inc()
                return
            received = Received(envelope=event, data=parse_data(event))
        except (PoisonEvent, ValidationError, UnknownEventType) as exc:
            await self._dead_letter(record, exc, attempts=0)
            return
        tried = self._attempts.setdefault(_record_key(record), _Attempts())
        if tried.dead_lettered:
            return  # by this slice's transaction before it was started over
        while tried.count < self._config.max_attempts:
            attempt = tried.count + 1
            started = time.perf_counter()
            try:
                async with session.begin_nested():
                    if not await claim_event(session, consumer=group, event_id=event.id):
                        HANDLER_OUTCOMES.labels(group, "duplicate").inc()
                        return
                    (followed,) = await follow_merges(session, [received])
                    await handler(followed, session)
                HANDLER_LATENCY.labels(group, event.type).observe(time.perf_counter() - started)
                HANDLER_OUTCOMES.labels(group, "ok").inc()
                return
            except Exception as exc:
                if is_infrastructure_failure(exc):
                    raise
                if not await self._database.healthy(since=time.monotonic()):
                    raise _Outage() from exc  # not the event's fault: not an attempt
                tried.count, tried.last_error = attempt, exc
                HANDLER_OUTCOMES.labels(group, "retried").inc()
                log.warning(
                    "handler_failed",
                    group=group,
                    event_id=event.id,
                    event_type=event.type,
                    attempt=attempt,
                    error=repr(exc),
                )
                if not await _usable(session):
                    raise _TransactionLost() from exc  # the attempt counts; the slice goes on in a new transaction
                if attempt < self._config.max_attempts:
                    await asyncio.sleep(self._config.retry_backoff_s * 2 ** (attempt - 1))
        assert tried.last_error is not None
        await self._dead_letter(record, tried.last_error, attempts=self._config.max_attempts)
        tried.dead_lettered = True

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], exc: BaseException, *, attempts: int) -> None:
        headers = dead_letter_headers(
            record.headers,
            error=exc,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            group=self._config.group_id,
            attempts=attempts,
            failed_at=datetime.now(UTC),
        )
        await self._producer.send_and_wait(dlq_name(record.topic), value=record.value, key=record.key, headers=headers)
        HANDLER_OUTCOMES.labels(self._config.group_id, "dead_lettered").inc()
        log.error(
            "event_dead_lettered",
            group=self._config.group_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error_type=type(exc).__name__,
        )

    def _report_lag(self, tp: TopicPartition, next_offset: int) -> None:
        with contextlib.suppress(AssertionError, IllegalStateError):
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                CONSUMER_LAG.labels(self._config.group_id, tp.topic, str(tp.partition)).set(
                    max(0, highwater - next_offset)
                )


@dataclass(slots=True)
class _Attempts:
    count: int = 0
    last_error: Exception | None = None
    dead_lettered: bool = False


class _Outage(Exception):
    """A failure while the database does not answer (its cause is the failure): the partition waits for it."""


class _TransactionLost(Exception):
    """A failure (its cause) left the partition's transaction unusable while the database answers."""


class _BatchFailed(Exception):
    """A batch handler failed (not an outage): its transaction is rolled back and the slice handled one by one."""

    def __init__(self, size: int) -> None:
        super().__init__(f"batch of {size} failed")
        self.size = size


@dataclass(frozen=True, slots=True)
class _PartitionSlice:
    partition: int
    records: list[ConsumerRecord[bytes, bytes]]
    first_offsets: dict[TopicPartition, int]
    next_offsets: dict[TopicPartition, int]


def _by_partition_number(
    batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
) -> list[_PartitionSlice]:
    """Group fetched records by partition number across topics, merged in timestamp order (per-topic order kept)."""
    grouped: dict[int, dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]] = {}
    for tp, records in batches.items():
        if records:
            grouped.setdefault(tp.partition, {})[tp] = records
    slices = []
    for partition, by_tp in sorted(grouped.items()):
        merged = sorted(
            (record for records in by_tp.values() for record in records),
            key=lambda r: (r.timestamp, r.topic, r.offset),
        )
        slices.append(
            _PartitionSlice(
                partition=partition,
                records=merged,
                first_offsets={tp: records[0].offset for tp, records in by_tp.items()},
                next_offsets={tp: records[-1].offset + 1 for tp, records in by_tp.items()},
            )
        )
    return slices


def _record_key(record: ConsumerRecord[bytes, bytes]) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


def _probe_of(sessions: SessionFactory) -> DatabaseProbe:
    """A probe of the database the sessions are bound to (its URL, password included)."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise ValueError("the session factory is bound to no engine: pass database=DatabaseProbe(url)")
    return DatabaseProbe(bind.url.render_as_string(hide_password=False))


async def _usable(session: AsyncSession) -> bool:
    """Whether the session's transaction can still run a statement."""
    try:
        await session.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def _one_at_a_time(handler: BatchHandler) -> Handler:
    async def single(received: Received[Any], session: AsyncSession) -> None:
        await handler([received], session)

    return single


def _decode(record: ConsumerRecord[bytes, bytes]) -> CloudEvent:
    if record.value is None:
        raise PoisonEvent("empty message")
    try:
        return CloudEvent.from_json(record.value)
    except (ValueError, ValidationError) as exc:
        raise PoisonEvent(f"not a valid CloudEvent: {exc}") from exc


class _InFlight:
    """The partition batches being handled, one task per partition number at most."""

    def __init__(self) -> None:
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self.changed = asyncio.Event()
        """Set whenever a batch finishes (its partition can be fetched from again)."""
        self.paused = False
        """Set while partitions are being revoked: nothing new is fetched, so the batches in flight can drain."""

    def partitions(self) -> set[int]:
        return set(self._tasks)

    def start(self, slice_: _PartitionSlice, work: Awaitable[None]) -> None:
        assert slice_.partition not in self._tasks, "a partition's batches run one after the other"
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks[slice_.partition] = task

        def finished(_: asyncio.Task[None]) -> None:
            if self._tasks.get(slice_.partition) is task:
                del self._tasks[slice_.partition]
            self.changed.set()

        task.add_done_callback(finished)

    async def drain(self) -> None:
        """Until no batch is in flight (including any started meanwhile)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))  # (a cancelled wait does not cancel the batches)
            await asyncio.sleep(0)  # let the done callbacks run


class _FinishBatchOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions are given up only after the batches in flight have committed their offsets."""

    def __init__(self, in_flight: _InFlight) -> None:
        self._in_flight = in_flight

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Paused first: under steady traffic the fetch loop would otherwise keep starting batches as others finish,
        # and the drain might not end before the rebalance times out.
        self._in_flight.paused = True
        await self._in_flight.drain()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._in_flight.paused = False


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
