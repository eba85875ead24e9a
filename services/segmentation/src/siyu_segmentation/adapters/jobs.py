"""Backfill jobs (progress, cancellation), RFM scores and daily tag counts: set-based SQL only."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters.tables import backfills, person_tags, profiles, tag_counts


async def queue_backfill(
    session: AsyncSession, *, tenant: str, reason: str, rule_ids: list[str], drop_tags: list[str]
) -> int:
    job_id = await session.scalar(
        backfills.insert()
        .values(tenant=tenant, reason=reason, scope={"rule_ids": rule_ids, "drop_tags": drop_tags}, status="pending")
        .returning(backfills.c.id)
    )
    assert job_id is not None
    return int(job_id)


async def claim_backfill(session: AsyncSession) -> RowMapping | None:
    """The oldest unfinished backfill, locked for this worker (others skip it)."""
    return (
        (
            await session.execute(
                select(backfills)
                .where(backfills.c.status.in_(("pending", "running")))
                .order_by(backfills.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .first()
    )


async def update_backfill(session: AsyncSession, job_id: int, **values: Any) -> None:
    await session.execute(update(backfills).where(backfills.c.id == job_id).values(**values))


async def count_profiles(session: AsyncSession, tenant: str) -> int:
    return int(await session.scalar(select(func.count()).where(profiles.c.tenant == tenant)) or 0)


async def get_backfill(session: AsyncSession, *, tenant: str, job_id: int) -> RowMapping | None:
    return (
        (await session.execute(select(backfills).where(backfills.c.tenant == tenant, backfills.c.id == job_id)))
        .mappings()
        .first()
    )


async def list_backfills(session: AsyncSession, *, tenant: str, limit: int = 50) -> list[RowMapping]:
    rows = await session.execute(
        select(backfills).where(backfills.c.tenant == tenant).order_by(backfills.c.id.desc()).limit(limit)
    )
    return list(rows.mappings())


async def request_cancel(session: AsyncSession, *, tenant: str, job_id: int) -> bool:
    result = await session.execute(
        update(backfills)
        .where(backfills.c.tenant == tenant, backfills.c.id == job_id, backfills.c.status.in_(("pending", "running")))
        .values(cancel_requested=True)
        .returning(backfills.c.id)
    )
    return result.first() is not None


_RFM = text(
    """
    UPDATE profiles p SET rfm_r = s.r, rfm_f = s.f, rfm_m = s.m
    FROM (
      SELECT person_id,
             ntile(5) OVER (ORDER BY last_order_at, person_id) AS r,
             ntile(5) OVER (ORDER BY order_count, person_id) AS f,
             ntile(5) OVER (ORDER BY net_fen, person_id) AS m
      FROM profiles WHERE tenant = :tenant AND order_count > 0
    ) s
    WHERE p.tenant = :tenant AND p.person_id = s.person_id
      AND (p.rfm_r, p.rfm_f, p.rfm_m) IS DISTINCT FROM (s.r, s.f, s.m)
    """
)
_RFM_CLEAR = text(
    """
    UPDATE profiles SET rfm_r = NULL, rfm_f = NULL, rfm_m = NULL
    WHERE tenant = :tenant AND order_count = 0 AND rfm_r IS NOT NULL
    """
)


async def recompute_rfm(session: AsyncSession, *, tenant: str) -> None:
    """RFM quintiles (5 = most recent / most frequent / most net money) over the tenant's buyers."""
    await session.execute(_RFM, {"tenant": tenant})
    await session.execute(_RFM_CLEAR, {"tenant": tenant})


_SNAPSHOT = text(
    """
    INSERT INTO tag_counts (tenant, day, tag, members)
    SELECT CAST(:tenant AS varchar), CAST(:day AS date), tag, count(*) FROM person_tags
    WHERE tenant = CAST(:tenant AS varchar) GROUP BY tag
    ON CONFLICT (tenant, day, tag) DO UPDATE SET members = EXCLUDED.members
    """
)


async def snapshot_tag_counts(session: AsyncSession, *, tenant: str, day: date) -> None:
    await session.execute(_SNAPSHOT, {"tenant": tenant, "day": day})


async def tag_counts_now_and_daily(
    session: AsyncSession, *, tenant: str, since: date | None
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    live = await session.execute(
        select(person_tags.c.tag, func.count()).where(person_tags.c.tenant == tenant).group_by(person_tags.c.tag)
    )
    history = select(tag_counts.c.day, tag_counts.c.tag, tag_counts.c.members).where(tag_counts.c.tenant == tenant)
    if since is not None:
        history = history.where(tag_counts.c.day >= since)
    days = await session.execute(history.order_by(tag_counts.c.day, tag_counts.c.tag))
    return (
        {tag: int(n) for tag, n in live.all()},
        [{"day": d.isoformat(), "tag": t, "members": int(m)} for d, t, m in days.all()],
    )
