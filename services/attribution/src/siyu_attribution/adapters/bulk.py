"""COPY-based writes for bulk replays (asyncpg connection whose search_path is the service schema)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from siyu_attribution.domain.ledger import Entry
from siyu_attribution.replay import ReplayRows

# Postgres timestamps count microseconds from 2000-01-01 UTC; its infinities are the extremes of int64.
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PG_INFINITY = 0x7FFF_FFFF_FFFF_FFFF
_PG_NEGATIVE_INFINITY = -0x8000_0000_0000_0000
# The aware extremes asyncpg also sends as the infinities (its encoder maps these two instants, whatever the zone).
_MAX_MICROSECONDS = (datetime.max.replace(tzinfo=UTC) - PG_EPOCH) // _MICROSECOND
_MIN_MICROSECONDS = (datetime.min.replace(tzinfo=UTC) - PG_EPOCH) // _MICROSECOND
_prepared: weakref.WeakSet[Any] = weakref.WeakSet()

ORDER_COLUMNS = (
    "tenant",
    "order_id",
    "order_no",
    "person_id",
    "channel",
    "amount_fen",
    "refunded_fen",
    "lines",
    "paid_at",
    "completed_at",
    "plan_id",
    "plan_version",
    "attribution_id",
    "settle_due_at",
    "settled_at",
)
ATTRIBUTION_COLUMNS = (
    "tenant",
    "attribution_id",
    "order_id",
    "model",
    "plan_id",
    "plan_version",
    "cause",
    "decided_at",
)
SHARE_COLUMNS = (
    "tenant",
    "order_id",
    "attribution_id",
    "position",
    "payee_id",
    "payee_role",
    "kind",
    "basis",
    "base_fen",
    "gross_fen",
)
ENTRY_COLUMNS: tuple[str, ...] = Entry._fields  # the book's entries are the rows, field for field


def timestamptz_encoder() -> Callable[[datetime], tuple[int]]:
    """Aware datetime to Postgres' binary timestamptz (microseconds since 2000-01-01 UTC), for ``COPY``.

    The same value asyncpg's own encoder sends, for about a quarter of its cost (which compares every value with
    its infinities and converts it to UTC before subtracting its epoch: more than the rest of an entry row's
    encoding). Each connection gets its own encoder, which remembers the last value: an order's entries share
    their posting time, row after row.

    Infinities as asyncpg sends them: ``datetime.max`` and ``datetime.min`` (naive, what the decoder returns for
    them) and the aware instants 9999-12-31 23:59:59.999999 UTC and 0001-01-01 00:00 UTC are Postgres'
    ``infinity`` and ``-infinity``. Any other naive datetime is refused (asyncpg would read it as local time).
    """
    last: datetime | None = None
    encoded = (0,)

    def encode(value: datetime) -> tuple[int]:
        nonlocal last, encoded
        if value is not last:
            if value.tzinfo is None:
                encoded = (_naive_infinity(value),)
            else:
                microseconds = (value - PG_EPOCH) // _MICROSECOND
                if microseconds == _MAX_MICROSECONDS:
                    microseconds = _PG_INFINITY
                elif microseconds == _MIN_MICROSECONDS:
                    microseconds = _PG_NEGATIVE_INFINITY
                encoded = (microseconds,)
            last = value
        return encoded

    return encode


def _naive_infinity(value: datetime) -> int:
    if value == datetime.max:
        return _PG_INFINITY
    if value == datetime.min:
        return _PG_NEGATIVE_INFINITY
    raise TypeError(f"naive datetime {value!r} for a timestamptz column (only datetime.max/min, the infinities)")


def timestamptz_decode(value: tuple[int]) -> datetime:
    """The reverse of ``timestamptz_encoder`` (what asyncpg returns, infinities as the naive ``datetime`` extremes)."""
    (microseconds,) = value
    if microseconds == _PG_INFINITY:
        return datetime.max
    if microseconds == _PG_NEGATIVE_INFINITY:
        return datetime.min
    return PG_EPOCH + timedelta(microseconds=microseconds)


async def prepare_copy(connection: Any) -> None:
    """Give ``connection`` the cheaper timestamptz codec (once; ``copy_replay`` calls it on first use)."""
    if connection not in _prepared:
        await connection.set_type_codec(
            "timestamptz",
            schema="pg_catalog",
            format="tuple",
            encoder=timestamptz_encoder(),
            decoder=timestamptz_decode,
        )
        _prepared.add(connection)


_SHARE_KEY = itemgetter(*(SHARE_COLUMNS.index(c) for c in ("order_id", "attribution_id", "position")))


async def copy_replay(connections: list[Any], rows: ReplayRows) -> None:
    """Write one replayed chunk, each table over its own connection (in parallel, each in its own transaction).

    The chunk is all-or-nothing per table only: a rebuild that stops half-way is re-run into a fresh tenant.
    Shares go in the order of their primary key (order, attribution id, position), so their inserts walk that
    index page by page. (Shares have no sequence column, so their order carries no meaning; entries keep theirs.)
    """
    for connection in connections:
        await prepare_copy(connection)
    work = [
        ("orders", ORDER_COLUMNS, rows.orders),
        ("attributions", ATTRIBUTION_COLUMNS, rows.attributions),
        ("attribution_shares", SHARE_COLUMNS, sorted(rows.shares, key=_SHARE_KEY)),
        ("ledger_entries", ENTRY_COLUMNS, rows.entries),
    ]
    await asyncio.gather(
        *(
            conn.copy_records_to_table(table, records=records, columns=list(columns))
            for conn, (table, columns, records) in zip(connections, work, strict=True)
            if records
        )
    )
