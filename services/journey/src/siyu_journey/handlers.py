"""One function per consumed event type: update what the journey knows of the person, exit, enter.

The consumer takes a partition batch at a time (``on_batch``). The frequent, person-local events (contact added
or removed, group joined) are handled in runs of distinct persons with a constant number of statements per run:
their persons are upserted at once, their exits and entries decided in the domain and written back in bulk. A
run ends before an event whose person is already in it and before any other event type, which is handled on its
own, so every person's events still take effect in partition order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_journey import service
from siyu_journey.adapters import repository as repo
from siyu_journey.domain.people import Friendship, after_added, after_removed, friendship
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
from siyu_shared.kafka.runner import BatchHandling, Handler, Received

OPT_OUT_TAG = "opted_out"
_IN_RUNS = frozenset({ContactAdded.event_type, ContactRemoved.event_type, GroupJoined.event_type})


class Handlers:
    def __init__(
        self, *, clock: Callable[[], datetime], topics: TopicNames, queued: service.Queued | None = None
    ) -> None:
        """``queued``: given the touches an event queued, in its transaction (the worker delivers those due now)."""
        self._clock = clock
        self._topics = topics
        self._queued = queued

    def table(self) -> Mapping[str, Handler]:
        return {
            ContactAdded.event_type: self.in_run,
            ContactRemoved.event_type: self.in_run,
            GroupJoined.event_type: self.in_run,
            LeadCaptured.event_type: self.lead_captured,
            OrderPaid.event_type: self.order_paid,
            TagsChanged.event_type: self.tags_changed,
            PersonMerged.event_type: self.person_merged,
            PersonErased.event_type: self.person_erased,
        }

    def batch(self) -> BatchHandling:
        """Every consumed type, a partition batch per call (see the module docstring)."""
        return BatchHandling(types=frozenset(self.table()), handler=self.on_batch)

    async def on_batch(self, events: list[Received[Any]], session: AsyncSession) -> None:
        one_by_one = self.table()
        run: list[Received[Any]] = []
        persons: set[tuple[str, str]] = set()
        for event in events:
            kind = event.envelope.type
            if kind in _IN_RUNS:
                key = (event.tenant, event.data.person_id)
                if key in persons:
                    await self._run(run, session)
                    run, persons = [], set()
                run.append(event)
                persons.add(key)
                continue
            await self._run(run, session)
            run, persons = [], set()
            await one_by_one[kind](event, session)
        await self._run(run, session)

    async def _run(self, run: list[Received[Any]], session: AsyncSession) -> None:
        """Events of ``_IN_RUNS`` types, one per person: exits, then person upserts with their WeCom friendships
        (decided by ``domain/people.py`` on the locked rows), then entries, in bulk."""
        if not run:
            return
        now = self._clock()
        removed = [e for e in run if e.envelope.type == ContactRemoved.event_type]
        if removed:
            await service.exit_many(
                session,
                [service.ExitRequest(e.tenant, e.data.person_id, "contact.removed") for e in removed],
                now=now,
                topics=self._topics,
            )
        contacts = [e for e in run if e.envelope.type != GroupJoined.event_type]
        persons = await repo.ensure_people(
            session,
            rows=[
                # What a new person starts with: a first add's friendship; nothing before a removal.
                {
                    "tenant": e.tenant,
                    "person_id": e.data.person_id,
                    "owner_staff_id": e.data.staff_id if e.envelope.type == ContactAdded.event_type else None,
                    "external_userid": e.data.external_userid if e.envelope.type == ContactAdded.event_type else None,
                }
                for e in contacts
            ],
            now=now,
        )
        changed: list[tuple[str, str, Friendship | None]] = []
        for e in contacts:
            row = persons[(e.tenant, e.data.person_id)]
            current = friendship(row.owner_staff_id, row.external_userid)
            new: Friendship | None
            if e.envelope.type == ContactAdded.event_type:
                new = after_added(current, Friendship(e.data.staff_id, e.data.external_userid))
            else:
                new = after_removed(current, e.data.staff_id)
            stored = (row.owner_staff_id, row.external_userid)
            if stored != ((new.owner_staff_id, new.external_userid) if new else (None, None)):
                changed.append((e.tenant, e.data.person_id, new))
        persons |= await repo.set_friendships(session, changes=changed, now=now)
        requests = [
            service.EntryRequest(
                e.tenant,
                e.data.person_id,
                Occurrence("contact.added" if e.envelope.type == ContactAdded.event_type else "group.joined"),
                e.envelope.id,
            )
            for e in run
            if e.envelope.type != ContactRemoved.event_type
        ]
        await service.enter_many(session, requests, now=now, persons=persons, queued=self._queued)

    async def in_run(self, event: Received[Any], session: AsyncSession) -> None:
        """An event of an ``_IN_RUNS`` type on its own: a run of one (``on_batch`` gathers them into longer runs)."""
        await self._run([event], session)

    async def _enter(self, event: Received[Any], session: AsyncSession, person_id: str, what: Occurrence) -> None:
        await service.enter(
            session,
            tenant=event.tenant,
            person_id=person_id,
            occurrence=what,
            trigger_event_id=event.envelope.id,
            now=self._clock(),
            queued=self._queued,
        )

    async def _exit(self, event: Received[Any], session: AsyncSession, person_id: str, what: str, **kw: Any) -> None:
        await service.exit_where(
            session, tenant=event.tenant, person_id=person_id, event=what, now=self._clock(), topics=self._topics, **kw
        )

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
