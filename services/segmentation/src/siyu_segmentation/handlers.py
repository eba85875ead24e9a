"""One handler per consumed event type: update the person's facts, then re-tag the person.

The runner gives each handler the partition's transaction (savepoint per event) and the inbox; a handler only
writes through ``session`` and raises on failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters import profiles as repo
from siyu_segmentation.adapters import tags as tag_repo
from siyu_segmentation.domain.tagging import diff
from siyu_segmentation.retag import Tagger
from siyu_shared.events.catalog import (
    ContactAdded,
    ContactRemoved,
    GroupJoined,
    GroupLeft,
    LeadCaptured,
    OrderClosed,
    OrderPaid,
    OrderRefunded,
    PersonErased,
    PersonMerged,
    TouchFailed,
    TouchSent,
    TouchSkipped,
)
from siyu_shared.kafka.runner import Handler, Received

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_handlers(tagger: Tagger, clock: Clock = utc_now) -> dict[str, Handler]:
    def facts_then_retag(
        update: Callable[[Received[Any], AsyncSession], Awaitable[None]], person: Callable[[Any], str]
    ) -> Handler:
        async def handle(event: Received[Any], session: AsyncSession) -> None:
            rule_set = await tagger.begin(session, event.tenant)
            await update(event, session)
            await tagger.retag(
                session,
                rule_set=rule_set,
                tenant=event.tenant,
                person_id=person(event.data),
                now=clock(),
                cause=event.envelope.id,
            )

        return handle

    def by_person(data: Any) -> str:
        return str(data.person_id)

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
        await tagger.retag(
            session, rule_set=rule_set, tenant=tenant, person_id=data.survivor_id, now=now, cause=event.envelope.id
        )

    async def erased(event: Received[PersonErased], session: AsyncSession) -> None:
        await tagger.begin(session, event.tenant)
        await repo.erase_person(session, tenant=event.tenant, person_id=event.data.person_id)

    return {
        LeadCaptured.event_type: facts_then_retag(_lead, by_person),
        ContactAdded.event_type: facts_then_retag(_contact_added, by_person),
        ContactRemoved.event_type: facts_then_retag(_contact_removed, by_person),
        GroupJoined.event_type: facts_then_retag(_group_joined, by_person),
        GroupLeft.event_type: facts_then_retag(_group_left, by_person),
        OrderPaid.event_type: facts_then_retag(_order_paid, by_person),
        OrderRefunded.event_type: facts_then_retag(_order_refunded, by_person),
        OrderClosed.event_type: facts_then_retag(_order_closed, by_person),
        TouchSent.event_type: facts_then_retag(_touch("sent"), by_person),
        TouchFailed.event_type: facts_then_retag(_touch("failed"), by_person),
        TouchSkipped.event_type: facts_then_retag(_touch("skipped"), by_person),
        PersonMerged.event_type: merged,
        PersonErased.event_type: erased,
    }


async def _lead(event: Received[LeadCaptured], session: AsyncSession) -> None:
    await repo.record_lead(session, tenant=event.tenant, lead=event.data)


async def _contact_added(event: Received[ContactAdded], session: AsyncSession) -> None:
    await repo.record_contact_added(session, tenant=event.tenant, contact=event.data)


async def _contact_removed(event: Received[ContactRemoved], session: AsyncSession) -> None:
    c = event.data
    await repo.touch_profile(session, tenant=event.tenant, person_id=c.person_id, seen_at=None)
    await repo.remove_from_set(
        session, tenant=event.tenant, person_id=c.person_id, column="wecom_staff", member=c.staff_id
    )
    await repo.set_wecom_removed_if_no_staff(session, tenant=event.tenant, person_id=c.person_id)


async def _group_joined(event: Received[GroupJoined], session: AsyncSession) -> None:
    g = event.data
    await repo.touch_profile(
        session, tenant=event.tenant, person_id=g.person_id, seen_at=g.occurred_at, add={"groups": [g.chat_id]}
    )


async def _group_left(event: Received[GroupLeft], session: AsyncSession) -> None:
    g = event.data
    await repo.touch_profile(session, tenant=event.tenant, person_id=g.person_id, seen_at=None)
    await repo.remove_from_set(session, tenant=event.tenant, person_id=g.person_id, column="groups", member=g.chat_id)


async def _order_paid(event: Received[OrderPaid], session: AsyncSession) -> None:
    o = event.data
    channels: list[str | None] = [o.channel]
    await repo.touch_profile(
        session,
        tenant=event.tenant,
        person_id=o.person_id,
        seen_at=o.paid_at,
        new={"first_channel": o.channel},
        add={"channels": channels},
    )
    await repo.record_order(
        session,
        tenant=event.tenant,
        person_id=o.person_id,
        order_id=o.order_id,
        paid_at=o.paid_at,
        amount_fen=o.amount_fen,
        categories=[line.category for line in o.lines if line.category],
    )
    await repo.recompute_orders(session, tenant=event.tenant, person_id=o.person_id)


async def _order_refunded(event: Received[OrderRefunded], session: AsyncSession) -> None:
    r = event.data
    await repo.touch_profile(session, tenant=event.tenant, person_id=r.person_id, seen_at=None)
    if await repo.record_refund(
        session, tenant=event.tenant, order_id=r.order_id, refund_id=r.refund_id, amount_fen=r.amount_fen, full=r.full
    ):
        await repo.recompute_orders(session, tenant=event.tenant, person_id=r.person_id)


async def _order_closed(event: Received[OrderClosed], session: AsyncSession) -> None:
    c = event.data
    await repo.touch_profile(session, tenant=event.tenant, person_id=c.person_id, seen_at=None)
    await repo.void_order(session, tenant=event.tenant, order_id=c.order_id)
    await repo.recompute_orders(session, tenant=event.tenant, person_id=c.person_id)


def _touch(status: str) -> Callable[[Received[Any], AsyncSession], Awaitable[None]]:
    async def record(event: Received[Any], session: AsyncSession) -> None:
        t = event.data
        await repo.touch_profile(session, tenant=event.tenant, person_id=t.person_id, seen_at=None)
        await repo.record_touch(
            session,
            tenant=event.tenant,
            person_id=t.person_id,
            touch_id=t.touch_id,
            at=t.occurred_at,
            channel=t.channel,
            status=status,
        )

    return record
