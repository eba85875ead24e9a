"""Background loops of the worker: backfills of changed rules, and the recency sweep (plus RFM and counts)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from siyu_segmentation.adapters import jobs
from siyu_segmentation.adapters.reevaluate import reevaluate_chunk
from siyu_segmentation.adapters.rule_store import load_rule_set, tenants_with_time_rules
from siyu_segmentation.domain.rules import needs_schedule, referenced_facts
from siyu_segmentation.domain.tagging import scopes_for
from siyu_segmentation.settings import SegmentationSettings
from siyu_shared.db.engine import SessionFactory
from siyu_shared.events.topics import TopicNames
from siyu_shared.logging import get_logger
from siyu_shared.service import Runtime

log = get_logger(__name__)

# One set-based re-evaluation at a time per process: a chunk waits for the tenant lock exclusively, and two such
# waiters for different tenants could form a wait cycle with two partition transactions (Postgres would break it).
_EXCLUSIVE_WORK = asyncio.Lock()


async def run_backfill_step(sessions: SessionFactory, *, topics: TopicNames, chunk: int, now: datetime) -> bool:
    """Advance the oldest unfinished backfill by one chunk (one transaction). False when there is nothing to do."""
    async with sessions() as session, session.begin():
        job = await jobs.claim_backfill(session)
        if job is None:
            return False
        if job["cancel_requested"]:
            await jobs.update_backfill(session, job["id"], status="cancelled", finished_at=now)
            return True
        tenant = job["tenant"]
        if job["status"] == "pending":
            await jobs.update_backfill(
                session, job["id"], status="running", total=await jobs.count_profiles(session, tenant)
            )
        rule_set = await load_rule_set(session, tenant)
        scope = job["scope"]
        result = await reevaluate_chunk(
            session,
            tenant=tenant,
            scopes=scopes_for(rule_set.rules, rule_set.exclusive, rule_ids=set(scope["rule_ids"])),
            drop_tags=scope.get("drop_tags", []),
            after=job["cursor"],
            limit=chunk,
            now=now,
            cause=f"backfill:{job['id']}",
            topics=topics,
        )
        if result.last_person is None:
            await jobs.update_backfill(session, job["id"], status="done", finished_at=now)
        else:
            await jobs.update_backfill(
                session,
                job["id"],
                cursor=result.last_person,
                processed=job["processed"] + result.processed,
                changed=job["changed"] + result.changed,
            )
    return True


@dataclass(frozen=True, slots=True)
class SweepReport:
    tenants: int
    processed: int
    changed: int


async def run_sweep(
    sessions: SessionFactory,
    *,
    topics: TopicNames,
    chunk: int,
    now: datetime,
    only_tenants: Sequence[str] | None = None,
) -> SweepReport:
    """Re-decide every time-dependent (and RFM) rule of every tenant as of ``now``, chunk by chunk, in SQL."""
    async with sessions() as session:
        tenants = await tenants_with_time_rules(session)
    if only_tenants is not None:
        tenants = [t for t in tenants if t in only_tenants]
    processed = changed = 0
    for tenant in tenants:
        async with sessions() as session, session.begin():
            rule_set = await load_rule_set(session, tenant)
            if any(f.startswith("rfm_") for r in rule_set.rules for f in referenced_facts(r.condition)):
                await jobs.recompute_rfm(session, tenant=tenant)
        swept = {r.rule_id for r in rule_set.rules if needs_schedule(r.condition)}
        scopes = scopes_for(rule_set.rules, rule_set.exclusive, rule_ids=swept)
        after: str | None = None
        while scopes:
            async with sessions() as session, session.begin():
                result = await reevaluate_chunk(
                    session,
                    tenant=tenant,
                    scopes=scopes,
                    after=after,
                    limit=chunk,
                    now=now,
                    cause=f"sweep:{now.isoformat()}",
                    topics=topics,
                )
            if result.last_person is None:
                break
            after, processed, changed = result.last_person, processed + result.processed, changed + result.changed
        async with sessions() as session, session.begin():
            await jobs.snapshot_tag_counts(session, tenant=tenant, day=now.date())
    return SweepReport(len(tenants), processed, changed)


async def backfill_loop(runtime: Runtime, stop: asyncio.Event) -> None:
    settings = runtime.settings
    assert isinstance(settings, SegmentationSettings)
    while not stop.is_set():
        try:
            async with _EXCLUSIVE_WORK:
                busy = await run_backfill_step(
                    runtime.sessions, topics=settings.topics, chunk=settings.backfill_chunk, now=datetime.now(UTC)
                )
        except Exception as exc:
            log.warning("backfill_step_failed", error=repr(exc))
            busy = False
        if not busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.backfill_poll_s)


async def sweep_loop(runtime: Runtime, stop: asyncio.Event) -> None:
    settings = runtime.settings
    assert isinstance(settings, SegmentationSettings)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.sweep_interval_s)
        if stop.is_set():
            return
        try:
            async with _EXCLUSIVE_WORK:
                report = await run_sweep(
                    runtime.sessions, topics=settings.topics, chunk=settings.backfill_chunk, now=datetime.now(UTC)
                )
            log.info("recency_sweep", tenants=report.tenants, processed=report.processed, changed=report.changed)
        except Exception as exc:
            log.warning("recency_sweep_failed", error=repr(exc))
