"""SQL of recorded (hand-made) touches: insert once per tenant and tool id."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_journey.adapters.tables import recorded_touches
from siyu_journey.domain.recorded import RecordedTouch


async def insert(session: AsyncSession, touch: RecordedTouch, *, recorded_at: datetime) -> RecordedTouch | None:
    """Store the touch; if its id was recorded before, return what was recorded then (and store nothing)."""
    values = {**asdict(touch), "recorded_at": recorded_at}
    stored = await session.execute(
        pg_insert(recorded_touches)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["tenant", "touch_id"])
        .returning(recorded_touches.c.touch_id)
    )
    if stored.first() is not None:
        return None
    row = (
        await session.execute(
            select(recorded_touches).where(
                recorded_touches.c.tenant == touch.tenant, recorded_touches.c.touch_id == touch.touch_id
            )
        )
    ).one()
    return RecordedTouch(**{f.name: getattr(row, f.name) for f in fields(RecordedTouch)})
