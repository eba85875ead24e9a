"""SQL of recorded (hand-made) touches: insert once per tenant and tool id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_journey.adapters.tables import recorded_touches


@dataclass(frozen=True)
class RecordedTouch:
    tenant: str
    touch_id: str
    client_id: str
    person_id: str
    channel: str
    kind: str
    staff_id: str
    occurred_at: datetime


async def insert(session: AsyncSession, touch: RecordedTouch, *, recorded_at: datetime) -> RecordedTouch | None:
    """Store the touch; if its id was recorded before, return what was recorded then (and store nothing)."""
    values = {**touch.__dict__, "recorded_at": recorded_at}
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
    return RecordedTouch(
        tenant=row.tenant,
        touch_id=row.touch_id,
        client_id=row.client_id,
        person_id=row.person_id,
        channel=row.channel,
        kind=row.kind,
        staff_id=row.staff_id,
        occurred_at=row.occurred_at,
    )
