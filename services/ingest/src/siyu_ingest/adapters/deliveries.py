"""Raw deliveries: stored before the reply, claimed by the worker in received order, kept with their error."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_ingest.adapters.tables import deliveries

_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('siyu-ingest-deliveries:' || current_schema()))")


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    tenant: str
    channel: str
    dedupe_key: str
    received_at: datetime
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    status: str
    attempts: int
    error: str | None
    processed_at: datetime | None


_COLUMNS = (
    deliveries.c.id,
    deliveries.c.tenant,
    deliveries.c.channel,
    deliveries.c.dedupe_key,
    deliveries.c.received_at,
    deliveries.c.headers,
    deliveries.c.query,
    deliveries.c.body,
    deliveries.c.status,
    deliveries.c.attempts,
    deliveries.c.error,
    deliveries.c.processed_at,
)


def _delivery(row: Any) -> Delivery:
    return Delivery(**row._mapping)


async def store(
    session: AsyncSession,
    *,
    tenant: str,
    channel: str,
    dedupe_key: str,
    body: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str],
) -> bool:
    """Insert the delivery unless the channel already sent it; True when it is new."""
    stmt = (
        pg_insert(deliveries)
        .values(
            tenant=tenant,
            channel=channel,
            dedupe_key=dedupe_key,
            body=body,
            headers=dict(headers),
            query=dict(query),
        )
        .on_conflict_do_nothing(constraint="deliveries_dedupe")
        .returning(deliveries.c.id)
    )
    return (await session.execute(stmt)).first() is not None


_GROUP_INSERT = """
INSERT INTO deliveries (tenant, channel, dedupe_key, body, headers, query)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::jsonb[], $6::jsonb[])
ON CONFLICT ON CONSTRAINT deliveries_dedupe DO NOTHING
"""

StoredRow = tuple[str, str, str, bytes, str, str]
_DATA_FAULT_CLASSES = frozenset({"22", "23"})
"""SQLSTATE classes in which Postgres refused the values themselves: data exception (NUL in text, a number out of
range, a string too long…) and integrity constraint violation. Every other class (08 connection, 53 resources, 57
operator intervention such as a shutdown, 58 system, XX internal…) says nothing about the row."""


class Unstorable(Exception):
    """Postgres refused what the delivery holds: a permanent fault of this delivery (a 400, never retried)."""


class StorageUnavailable(Exception):
    """The delivery could not be stored now, whatever the reason (an outage, a dropped connection, a driver in a
    state it cannot leave, a timeout): a 503, the platform retries."""


def is_data_fault(exc: BaseException) -> bool:
    """Whether ``exc`` says the values were refused (permanent), as opposed to the storage being unavailable.

    Looks at the SQLSTATE Postgres gave (on the exception or anything it wraps: SQLAlchemy's ``orig``, the cause
    chain), and at asyncpg's client-side refusal of a query argument. Anything without such evidence, of any class,
    is not a data fault: the storage is treated as unavailable.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, asyncpg.exceptions._base.DataError):
            return True  # asyncpg refused to encode an argument (it never reached the server)
        for attribute in ("sqlstate", "pgcode"):
            state = getattr(current, attribute, None)
            if isinstance(state, str) and len(state) == 5:
                return state[:2] in _DATA_FAULT_CLASSES
        orig = getattr(current, "orig", None)
        pending += [orig if isinstance(orig, BaseException) else None, current.__cause__, current.__context__]
    return False


class GroupWriter:
    """Group commit for the webhook hot path: deliveries that arrive while a commit is in flight are written
    together by the next one (one INSERT … SELECT FROM unnest, one commit), and every request is answered only
    after the commit that holds its row. At low load a delivery is written alone and at once (no added wait);
    under load the number of commits per second stops being the limit (each one waits for the WAL flush).

    One row never fails its neighbours: when Postgres refuses a batch for its data (:func:`is_data_fault`), the
    batch is written again one row per statement, so only the row that is refused alone fails (with
    :class:`Unstorable`); the others are stored. Any other failure fails the rows it touched with
    :class:`StorageUnavailable`. Those are the only two exceptions ``store`` raises.
    """

    def __init__(self, pool: Any, *, max_batch: int = 500, max_inflight: int = 4) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._queue: list[tuple[StoredRow, asyncio.Future[None]]] = []
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def store(
        self,
        *,
        tenant: str,
        channel: str,
        dedupe_key: str,
        body: bytes,
        headers: Mapping[str, str],
        query: Mapping[str, str],
    ) -> None:
        """Return once the delivery is committed (or already was: a duplicate is not an error); raise
        :class:`Unstorable` or :class:`StorageUnavailable` else."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        row = (
            tenant,
            channel,
            dedupe_key,
            body,
            orjson.dumps(dict(headers)).decode(),
            orjson.dumps(dict(query)).decode(),
        )
        self._queue.append((row, done))
        self._kick()
        await done

    def _kick(self) -> None:
        while self._queue and self._inflight < self._max_inflight:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            self._inflight += 1
            task = asyncio.create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[tuple[StoredRow, asyncio.Future[None]]]) -> None:
        try:
            try:
                await self._write([row for row, _ in batch])
            except Exception as exc:
                if len(batch) > 1 and is_data_fault(exc):
                    await self._one_by_one(batch)
                else:
                    _fail(batch, exc)
            else:
                _succeed(batch)
        finally:
            self._inflight -= 1
            self._kick()

    async def _one_by_one(self, batch: list[tuple[StoredRow, asyncio.Future[None]]]) -> None:
        """Each row in a statement of its own: the one Postgres refuses fails alone."""
        for index, (row, done) in enumerate(batch):
            try:
                await self._write([row])
            except Exception as exc:
                if not is_data_fault(exc):
                    _fail(batch[index:], exc)  # the storage went away: no point trying the rest now
                    return
                _fail([(row, done)], exc)
            else:
                _succeed([(row, done)])

    async def _write(self, rows: list[StoredRow]) -> None:
        columns = list(zip(*rows, strict=True))
        await self._pool.execute(_GROUP_INSERT, *(list(c) for c in columns))


def _succeed(batch: Sequence[tuple[StoredRow, asyncio.Future[None]]]) -> None:
    for _, done in batch:
        if not done.done():
            done.set_result(None)


def _fail(batch: Sequence[tuple[StoredRow, asyncio.Future[None]]], exc: Exception) -> None:
    error: Exception
    if is_data_fault(exc):
        error = Unstorable(str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
    else:
        error = StorageUnavailable(f"{type(exc).__name__}: {exc}"[:300])
    error.__cause__ = exc
    for _, done in batch:
        if not done.done():
            done.set_exception(error)


async def mark_processed(session: AsyncSession, *, delivery_ids: Sequence[int]) -> None:
    if delivery_ids:
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(list(delivery_ids)))
            .values(status="processed", error=None, attempts=deliveries.c.attempts + 1, processed_at=func.now())
        )


async def claim_pending(session: AsyncSession, *, limit: int) -> list[Delivery] | None:
    """Pending deliveries in received order, locked for this transaction; None when another worker holds the
    processing lock (one processor at a time keeps a person's and an order's changes in order)."""
    if not await session.scalar(_LOCK):
        return None
    rows = await session.execute(
        select(*_COLUMNS)
        .where(deliveries.c.status == "pending")
        .order_by(deliveries.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_delivery(r) for r in rows]


async def mark(session: AsyncSession, *, delivery_id: int, status: str, error: str | None = None) -> None:
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=status,
            error=error,
            attempts=deliveries.c.attempts + 1,
            processed_at=func.now() if status != "pending" else None,
        )
    )


async def get(session: AsyncSession, *, tenant: str, delivery_id: int) -> Delivery | None:
    row = (
        await session.execute(select(*_COLUMNS).where(deliveries.c.tenant == tenant, deliveries.c.id == delivery_id))
    ).first()
    return _delivery(row) if row is not None else None


async def list_for(
    session: AsyncSession, *, tenant: str, status: str | None, channel: str | None, after_id: int, limit: int
) -> Sequence[Delivery]:
    query = select(*_COLUMNS).where(deliveries.c.tenant == tenant, deliveries.c.id > after_id)
    if status:
        query = query.where(deliveries.c.status == status)
    if channel:
        query = query.where(deliveries.c.channel == channel)
    rows = await session.execute(query.order_by(deliveries.c.id).limit(limit))
    return [_delivery(r) for r in rows]


async def requeue(
    session: AsyncSession, *, tenant: str, delivery_ids: Sequence[int] | None = None, status: str = "failed"
) -> int:
    """Put failed deliveries (all of the tenant's, or the given ones) back to pending; returns how many."""
    stmt = update(deliveries).where(deliveries.c.tenant == tenant, deliveries.c.status == status)
    if delivery_ids is not None:
        stmt = stmt.where(deliveries.c.id.in_(list(delivery_ids)))
    result = await session.execute(stmt.values(status="pending", error=None, attempts=0))
    return int(getattr(result, "rowcount", 0) or 0)


async def count_by_status(session: AsyncSession, *, tenant: str) -> dict[str, int]:
    rows = await session.execute(
        select(deliveries.c.status, func.count()).where(deliveries.c.tenant == tenant).group_by(deliveries.c.status)
    )
    return {status: int(count) for status, count in rows.all()}
