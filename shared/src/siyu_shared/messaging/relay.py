"""The outbox relay: publishes committed outbox rows to Kafka, then marks them published.

- Rows are claimed with ``FOR UPDATE SKIP LOCKED`` inside a transaction that also holds a per-schema advisory
  lock, so any number of relays can run (for failover) while batches go out one at a time: a person's events
  reach Kafka in the order they were committed.
- The producer is idempotent with acks=all. A relay that dies after Kafka acknowledged a batch but before the
  mark committed publishes the batch again on the next round; consumers absorb the copy in their inbox.
- Each message is a CloudEvent in the Kafka binding's structured mode (``content-type`` and ``ce_`` headers:
  ``kafka/headers.py``).
- Low latency: an ``AFTER INSERT`` trigger NOTIFYs the schema's channel and the relay LISTENs; a short poll
  interval covers a lost notification or a dropped listening connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from siyu_shared.db.platform_tables import outbox_notify_channel
from siyu_shared.kafka.headers import event_headers
from siyu_shared.logging import get_logger
from siyu_shared.messaging.tables import outbox_table
from siyu_shared.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED
from siyu_shared.settings import to_libpq_url

log = get_logger(__name__)

_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('siyu-outbox:' || current_schema()))")
# One constant statement over an array (an IN list would be a new statement, prepared anew, for every batch size).
_MARK = text("UPDATE outbox SET published_at = now() WHERE id = ANY(CAST(:ids AS bigint[]))")


@dataclass(frozen=True, slots=True)
class RelayConfig:
    service: str
    schema: str
    batch: int = 500
    poll_interval_s: float = 0.5
    retention: timedelta = timedelta(hours=72)
    housekeeping_interval_s: float = 5.0


class OutboxRelay:
    def __init__(
        self,
        *,
        config: RelayConfig,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        database_url: str,
        before_mark: Callable[[list[int]], Awaitable[None]] | None = None,
    ) -> None:
        self._config = config
        self._engine = engine
        self._producer = producer
        self._database_url = database_url
        # Test seam: runs after Kafka acknowledged a batch and before the mark is written (a crash point).
        self._before_mark = before_mark
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    async def publish_batch(self) -> int:
        """Publish one batch of unpublished rows in id order; returns how many went out."""
        async with self._engine.begin() as conn:
            if not await conn.scalar(_LOCK):
                return 0  # another relay is publishing this schema's outbox right now
            rows = (
                await conn.execute(
                    select(
                        outbox_table.c.id,
                        outbox_table.c.topic,
                        outbox_table.c.key,
                        outbox_table.c.payload,
                        outbox_table.c.event_id,
                        outbox_table.c.event_type,
                        outbox_table.c.tenant,
                    )
                    .where(outbox_table.c.published_at.is_(None))
                    .order_by(outbox_table.c.id)
                    .limit(self._config.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            pending = [
                await self._producer.send(
                    row.topic,
                    value=row.payload,
                    key=row.key.encode() if row.key else None,
                    headers=event_headers(event_id=row.event_id, event_type=row.event_type, tenant=row.tenant),
                )
                for row in rows
            ]
            await asyncio.gather(*pending)
            ids = [row.id for row in rows]
            if self._before_mark is not None:
                await self._before_mark(ids)
            await conn.execute(_MARK, {"ids": ids})
        OUTBOX_PUBLISHED.labels(self._config.service).inc(len(rows))
        return len(rows)

    async def backlog(self) -> int:
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(outbox_table).where(outbox_table.c.published_at.is_(None))
            )
        return int(count or 0)

    async def purge_published(self) -> int:
        """Drop rows published longer ago than the retention (they are on Kafka; the outbox is not an archive)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                outbox_table.delete().where(
                    outbox_table.c.published_at < func.now() - self._config.retention,
                )
            )
        return int(result.rowcount or 0)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; survives Postgres and Kafka outages by backing off and retrying."""
        failures = 0
        next_housekeeping = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                await self._ensure_listener()
                try:
                    published = await self.publish_batch()
                    if loop.time() >= next_housekeeping:
                        OUTBOX_BACKLOG.labels(self._config.service).set(await self.backlog())
                        await self.purge_published()
                        next_housekeeping = loop.time() + self._config.housekeeping_interval_s
                    failures = 0
                except Exception as exc:
                    failures += 1
                    log.warning("outbox_publish_failed", error=repr(exc), failures=failures)
                    await _sleep_or_stop(stop, min(5.0, 0.1 * 2**failures))
                    continue
                if published >= self._config.batch:
                    continue  # more rows waiting: no pause
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wait_wake_or_stop(stop), self._config.poll_interval_s)
        finally:
            await self._close_listener()

    async def _wait_wake_or_stop(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            conn = await asyncpg.connect(
                to_libpq_url(self._database_url),
                timeout=3,
                server_settings={"search_path": self._config.schema, "application_name": "outbox-relay"},
            )
            await conn.add_listener(outbox_notify_channel(self._config.schema), self._on_notify)
            self._listener = conn
        except Exception as exc:
            log.info("outbox_listener_unavailable", error=repr(exc))
            self._listener = None

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
            self._listener = None


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
