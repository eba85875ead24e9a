"""The barrier events of the batch handler, handled one at a time in their place: merges and erasures.

Fact events (leads, contacts, groups, orders, touches) have a single path, the batch handler (``batch.py``); the
runner also replays a failed batch through it one event at a time. A handler only writes through ``session`` and
raises on failure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters import bulk
from siyu_segmentation.adapters import profiles as repo
from siyu_segmentation.adapters import tags as tag_repo
from siyu_segmentation.domain.tagging import diff
from siyu_segmentation.retag import Tagger
from siyu_shared.events.catalog import PersonErased, PersonMerged
from siyu_shared.kafka.runner import Handler, Received

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_barrier_handlers(tagger: Tagger, clock: Clock = utc_now) -> dict[str, Handler]:
    async def merged(event: Received[PersonMerged], session: AsyncSession) -> None:
        data, tenant = event.data, event.tenant
        rule_set = await tagger.begin(session, tenant)
        now = clock()
        gone = [m for m in data.merged_ids if m != data.survivor_id]
        for person_id in gone:  # their tags end with them: say so, then fold the facts into the survivor
            held = await tag_repo.current_tags(session, tenant=tenant, person_id=person_id)
            if held:
                change = diff(held, {})
                await tag_repo.apply_tags(
                    session, tenant=tenant, person_id=person_id, change=change, kept_versions=[], facts={}, now=now
                )
                await tag_repo.emit_tags_changed(
                    session,
                    tenant=tenant,
                    person_id=person_id,
                    change=change,
                    facts={"merged_into": data.survivor_id},
                    now=now,
                    cause=event.envelope.id,
                    topics=tagger.topics,
                )
        await repo.merge_profiles(session, tenant=tenant, survivor_id=data.survivor_id, merged_ids=gone)
        # The survivor's order and touch aggregates are re-derived from the rows it now owns, then it is re-tagged
        # and its row written: the same steps as a batch round. A survivor without a profile holds no tags.
        survivor = [data.survivor_id]
        locked = await bulk.lock_profiles(session, tenant=tenant, person_ids=survivor)
        people = {p: lp for p, lp in locked.items() if lp.exists}
        retagging = tagger.retagging(session, rule_set=rule_set, tenant=tenant, people=people)
        causes = {data.survivor_id: event.envelope.id}
        await retagging.round(causes=causes, now=now, order_persons=survivor, touch_persons=survivor)
        await retagging.finish()

    async def erased(event: Received[PersonErased], session: AsyncSession) -> None:
        await tagger.begin(session, event.tenant)
        await repo.erase_person(session, tenant=event.tenant, person_id=event.data.person_id)

    return {PersonMerged.event_type: merged, PersonErased.event_type: erased}
