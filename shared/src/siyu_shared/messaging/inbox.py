"""Inbox: a consumer records each processed event id in the same transaction as its effects.

A redelivered event (relay crash, rebalance, DLQ replay) finds its id already there and has no second effect.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_shared.messaging.tables import inbox_table


async def claim_event(session: AsyncSession, *, consumer: str, event_id: str) -> bool:
    """True if this consumer has not processed ``event_id`` before (and now owns it in this transaction)."""
    stmt = (
        pg_insert(inbox_table)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(inbox_table.c.event_id)
    )
    return (await session.execute(stmt)).first() is not None


# One constant statement whatever the batch size (prepared once per connection, no per-size compile).
_CLAIM_EVENTS = text(
    "INSERT INTO inbox (consumer, event_id)"
    " SELECT CAST(:consumer AS varchar), e.event_id FROM unnest(CAST(:event_ids AS varchar[])) AS e(event_id)"
    " ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id"
)


async def claim_events(session: AsyncSession, *, consumer: str, event_ids: list[str]) -> set[str]:
    """The ids among ``event_ids`` this consumer has not processed before, claimed in one statement."""
    if not event_ids:
        return set()
    rows = await session.execute(_CLAIM_EVENTS, {"consumer": consumer, "event_ids": list(dict.fromkeys(event_ids))})
    return set(rows.scalars().all())
