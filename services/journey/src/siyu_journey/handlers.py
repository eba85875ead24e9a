"""One function per consumed event type: update what the journey knows of the person, exit, enter."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_journey import service
from siyu_journey.adapters import repository as repo
from siyu_journey.domain.triggers import Occurrence
from siyu_shared.events.catalog import (
    ContactAdded,
    ContactRemoved,
    GroupJoined,
    LeadCaptured,
    OrderPaid,
    PersonErased,
    PersonMerged,
    TagsChanged,
)
from siyu_shared.events.topics import TopicNames
from siyu_shared.kafka.runner import Handler, Received

OPT_OUT_TAG = "opted_out"


class Handlers:
    def __init__(self, *, clock: Callable[[], datetime], topics: TopicNames) -> None:
        self._clock = clock
        self._topics = topics

    def table(self) -> Mapping[str, Handler]:
        return {
            ContactAdded.event_type: self.contact_added,
            ContactRemoved.event_type: self.contact_removed,
            GroupJoined.event_type: self.group_joined,
            LeadCaptured.event_type: self.lead_captured,
            OrderPaid.event_type: self.order_paid,
            TagsChanged.event_type: self.tags_changed,
            PersonMerged.event_type: self.person_merged,
            PersonErased.event_type: self.person_erased,
        }

    async def _enter(self, event: Received[Any], session: AsyncSession, person_id: str, what: Occurrence) -> None:
        await service.enter(
            session,
            tenant=event.tenant,
            person_id=person_id,
            occurrence=what,
            trigger_event_id=event.envelope.id,
            now=self._clock(),
        )

    async def _exit(self, event: Received[Any], session: AsyncSession, person_id: str, what: str, **kw: Any) -> None:
        await service.exit_where(
            session, tenant=event.tenant, person_id=person_id, event=what, now=self._clock(), topics=self._topics, **kw
        )

    async def contact_added(self, event: Received[ContactAdded], session: AsyncSession) -> None:
        data, now = event.data, self._clock()
        await repo.ensure_person(
            session,
            tenant=event.tenant,
            person_id=data.person_id,
            now=now,
            owner_staff_id=data.staff_id,
            external_userid=data.external_userid,
        )
        await self._enter(event, session, data.person_id, Occurrence("contact.added"))

    async def contact_removed(self, event: Received[ContactRemoved], session: AsyncSession) -> None:
        await self._exit(event, session, event.data.person_id, "contact.removed")

    async def group_joined(self, event: Received[GroupJoined], session: AsyncSession) -> None:
        await self._enter(event, session, event.data.person_id, Occurrence("group.joined"))

    async def lead_captured(self, event: Received[LeadCaptured], session: AsyncSession) -> None:
        data, now = event.data, self._clock()
        person = await repo.ensure_person(session, tenant=event.tenant, person_id=data.person_id, now=now)
        if data.attributes:
            facts = {**person.facts, **data.attributes, "incentive": data.incentive}
            await repo.update_person(session, tenant=event.tenant, person_id=data.person_id, facts=facts)
        await self._enter(event, session, data.person_id, Occurrence("lead.captured", incentive=data.incentive))

    async def order_paid(self, event: Received[OrderPaid], session: AsyncSession) -> None:
        data, now = event.data, self._clock()
        person = await repo.ensure_person(session, tenant=event.tenant, person_id=data.person_id, now=now)
        total = person.paid_total_fen + data.amount_fen
        await repo.update_person(
            session,
            tenant=event.tenant,
            person_id=data.person_id,
            paid_total_fen=total,
            last_paid_at=max(d for d in (person.last_paid_at, data.paid_at) if d is not None),
            updated_at=now,
        )
        await self._exit(event, session, data.person_id, "order.paid")
        await self._enter(event, session, data.person_id, Occurrence("order.paid", paid_total_fen=total))

    async def tags_changed(self, event: Received[TagsChanged], session: AsyncSession) -> None:
        data, now = event.data, self._clock()
        person = await repo.ensure_person(session, tenant=event.tenant, person_id=data.person_id, now=now)
        tags = set(data.tags)
        await repo.update_person(
            session,
            tenant=event.tenant,
            person_id=data.person_id,
            tags=sorted(tags),
            facts={**person.facts, **data.facts},  # keeps what leads told us (skin type…) unless re-decided
            opted_out=OPT_OUT_TAG in tags,
            updated_at=now,
        )
        if OPT_OUT_TAG in tags:
            await self._exit(event, session, data.person_id, "opted_out")
        lost = frozenset(c.tag for c in data.removed)
        if lost:
            await self._exit(event, session, data.person_id, "tags.changed", lost_tags=lost)
        for added in data.added:
            await self._enter(event, session, data.person_id, Occurrence("tag.added", tag=added.tag))
        for removed in data.removed:
            await self._enter(event, session, data.person_id, Occurrence("tag.removed", tag=removed.tag))

    async def person_merged(self, event: Received[PersonMerged], session: AsyncSession) -> None:
        data = event.data
        await service.merge(
            session,
            tenant=event.tenant,
            survivor_id=data.survivor_id,
            merged_ids=[m for m in data.merged_ids if m != data.survivor_id],
            now=self._clock(),
            topics=self._topics,
        )

    async def person_erased(self, event: Received[PersonErased], session: AsyncSession) -> None:
        person_id = event.data.person_id
        await self._exit(event, session, person_id, "erased", everything=True)
        await repo.delete_person(session, tenant=event.tenant, person_id=person_id)
