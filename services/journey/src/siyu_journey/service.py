"""Application functions: load state through the repository, ask the domain, save, queue touches and events.

Called by the event handlers, the timer worker and the API; none of them commits (the caller owns the
transaction), so the enrolment's new state, its timer, its touches and its events commit together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_journey.adapters import progress
from siyu_journey.adapters import repository as repo
from siyu_journey.domain import machine, people
from siyu_journey.domain.definition import JourneyDefinition
from siyu_journey.domain.machine import Enrolment, PersonView, Transition
from siyu_journey.domain.triggers import Occurrence, matches
from siyu_journey.touch_events import TouchOutcome, emit
from siyu_shared.events.topics import TopicNames

Queued = Callable[[AsyncSession, list[dict[str, Any]], Mapping[tuple[str, str], Row[Any]] | None], Awaitable[set[str]]]
"""Given the touch rows about to be inserted, in the same transaction, and the people rows this transaction holds
locked, if any (by tenant and person); inserts those it delivers at once (the worker: those due now) and returns
their ids. The rest are inserted pending."""


@dataclass(frozen=True, slots=True)
class Planned:
    """One transition to save: whose, under which journey, with which staff account."""

    tenant: str
    definition: JourneyDefinition
    transition: Transition
    staff_id: str | None


def touch_rows(planned: Planned, *, now: datetime) -> list[dict[str, Any]]:
    enrolment = planned.transition.enrolment
    return [
        {
            "touch_id": t.touch_id,
            "tenant": planned.tenant,
            "enrolment_id": enrolment.enrolment_id,
            "person_id": enrolment.person_id,
            "journey_id": enrolment.journey_id,
            "version": enrolment.version,
            "step_id": t.step_id,
            "occurrence": t.occurrence,
            "channel": t.channel,
            "template": t.template,
            "campaign_id": t.campaign_id or planned.definition.campaign_id,
            "priority": planned.definition.priority,
            "persona": planned.definition.persona,
            "staff_id": planned.staff_id,
            "status": "pending",
            "reason": None,
            "attempts": 0,
            "due_at": now,
            "attempt_at": None,
            "sent_at": None,
            "created_at": now,
        }
        for t in planned.transition.touches
    ]


async def save(session: AsyncSession, plans: Sequence[Planned], *, now: datetime) -> None:
    """Saves transitions of existing enrolments: state, the next timer (or none), the touches they queued."""
    await progress.save_enrolments(session, saved=[p.transition.enrolment for p in plans], now=now)
    await _queue(session, plans, now=now)


async def _queue(
    session: AsyncSession,
    plans: Sequence[Planned],
    *,
    now: datetime,
    new: bool = False,
    queued: Queued | None = None,
    persons: Mapping[tuple[str, str], Row[Any]] | None = None,
) -> None:
    timers = []
    finished = []
    for p in plans:
        timer = p.transition.timer
        if timer is not None:
            timers.append(
                {
                    "tenant": p.tenant,
                    "enrolment_id": p.transition.enrolment.enrolment_id,
                    "step_id": timer.step_id,
                    "due_at": timer.due_at,
                }
            )
        else:
            finished.append(p.transition.enrolment.enrolment_id)
    if not new:  # a new enrolment has no timer yet
        await progress.delete_timers(session, enrolment_ids=finished)
    await progress.set_timers(session, rows=timers)
    rows = [row for p in plans for row in touch_rows(p, now=now)]
    if queued is not None and rows:
        done = await queued(session, rows, persons)
        rows = [r for r in rows if r["touch_id"] not in done]
    await progress.insert_touches(session, rows=rows)


@dataclass(frozen=True, slots=True)
class EntryRequest:
    """An occurrence that may enrol a person (the trigger event's id makes re-entry keys)."""

    tenant: str
    person_id: str
    occurrence: Occurrence
    trigger_event_id: str


@dataclass(frozen=True, slots=True)
class ExitRequest:
    """An event that may end a person's enrolments (``everything``: all of them, whatever their journey)."""

    tenant: str
    person_id: str
    event: str
    lost_tags: frozenset[str] = frozenset()
    everything: bool = False


async def enter(
    session: AsyncSession,
    *,
    tenant: str,
    person_id: str,
    occurrence: Occurrence,
    trigger_event_id: str,
    now: datetime,
    queued: Queued | None = None,
) -> list[str]:
    """Enrols the person in every live journey the occurrence triggers; returns the new enrolment ids."""
    return await enter_many(
        session, [EntryRequest(tenant, person_id, occurrence, trigger_event_id)], now=now, queued=queued
    )


async def enter_many(
    session: AsyncSession,
    requests: Sequence[EntryRequest],
    *,
    now: datetime,
    persons: Mapping[tuple[str, str], Row[Any]] | None = None,
    queued: Queued | None = None,
) -> list[str]:
    """``enter`` for a batch of requests of distinct persons, in a constant number of statements: the persons a
    live journey wants are ensured at once, re-entry is checked at once, enrolments inserted at once (a taken
    entry key leaves one out: a duplicate trigger never enrols twice), then their timers and touches.

    ``persons``: rows the caller already holds (locked), by (tenant, person); ``queued``: see ``Queued``."""
    candidates: list[tuple[EntryRequest, int, JourneyDefinition]] = []
    for request in requests:
        for version, definition in await repo.live_journeys(session, tenant=request.tenant):
            if matches(definition.trigger, request.occurrence):
                candidates.append((request, version, definition))
    if not candidates:
        return []
    held = dict(persons or {})
    missing = sorted({(r.tenant, r.person_id) for r, _, _ in candidates} - held.keys())
    held |= await repo.ensure_people(session, rows=[{"tenant": t, "person_id": p} for t, p in missing], now=now)
    busy = await progress.active_in(
        session,
        keys=[(r.tenant, d.id, r.person_id) for r, _, d in candidates if d.entry.mode == "reentry"],
    )
    pending: list[tuple[str, str, Planned]] = []
    for request, version, definition in candidates:
        tenant, person_id = request.tenant, request.person_id
        if definition.entry.mode == "reentry":
            if (tenant, definition.id, person_id) in busy:
                continue
            busy.add((tenant, definition.id, person_id))
        person = held[(tenant, person_id)]
        key = machine.entry_key(definition.entry, now=now, trigger_event_id=request.trigger_event_id)
        enrolment = Enrolment(
            enrolment_id=machine.enrolment_id(
                tenant=tenant, journey_id=definition.id, version=version, person_id=person_id, key=key
            ),
            journey_id=definition.id,
            version=version,
            person_id=person_id,
            entered_at=now,
        )
        transition = machine.start(definition, enrolment, repo.person_view(person_id, person), now=now)
        staff = person.owner_staff_id or machine.assign_staff(definition.staff_pool, person_id)
        pending.append((tenant, key, Planned(tenant, definition, transition, staff)))
    inserted = await progress.insert_enrolments(
        session, rows=[(tenant, p.transition.enrolment, key) for tenant, key, p in pending]
    )
    plans = [p for _, _, p in pending if p.transition.enrolment.enrolment_id in inserted]
    await _queue(session, plans, now=now, new=True, queued=queued, persons=held)
    return [p.transition.enrolment.enrolment_id for p in plans]


async def exit_where(
    session: AsyncSession,
    *,
    tenant: str,
    person_id: str,
    event: str,
    lost_tags: frozenset[str] = frozenset(),
    now: datetime,
    topics: TopicNames,
    everything: bool = False,
) -> list[str]:
    """Exits the person's active enrolments whose journey ends on this event; their queued touches are skipped."""
    return await exit_many(
        session, [ExitRequest(tenant, person_id, event, lost_tags, everything)], now=now, topics=topics
    )


async def exit_many(
    session: AsyncSession, requests: Sequence[ExitRequest], *, now: datetime, topics: TopicNames
) -> list[str]:
    """``exit_where`` for a batch of requests of distinct persons: one query loads (and locks) their active
    enrolments, the domain decides, ``end`` writes back in bulk."""
    active = await progress.active_enrolments_of(session, keys=[(r.tenant, r.person_id) for r in requests])
    leaving: list[Enrolment] = []
    for request in requests:
        for enrolment in active.get((request.tenant, request.person_id), []):
            definition = await repo.definition(
                session, tenant=request.tenant, journey_id=enrolment.journey_id, version=enrolment.version
            )
            reason = (
                request.event
                if request.everything
                else machine.exit_reason(definition, event=request.event, lost_tags=request.lost_tags)
            )
            if reason is not None:
                leaving.append(machine.exit_now(enrolment, reason))
    await end(session, leaving, now=now, topics=topics)
    return [e.enrolment_id for e in leaving]


async def end(session: AsyncSession, leaving: Sequence[Enrolment], *, now: datetime, topics: TopicNames) -> None:
    if not leaving:
        return
    ids = [e.enrolment_id for e in leaving]
    await progress.save_enrolments(session, saved=leaving, now=now)
    await progress.delete_timers(session, enrolment_ids=ids)
    reasons = {e.enrolment_id: f"exited:{e.exit_reason}" for e in leaving}
    cancelled = await progress.pending_touches_of(session, enrolment_ids=ids)
    await progress.update_touches(
        session,
        changes=[
            change(t, status="skipped", reason=reasons[t.enrolment_id], due=t.due_at, attempt_at=t.attempt_at)
            for t in cancelled
        ],
    )
    await emit(
        session,
        [TouchOutcome(t, "skipped", now, reason=reasons[t.enrolment_id]) for t in cancelled],
        topics=topics,
    )


def change(touch: Any, **values: Any) -> dict[str, Any]:
    """A row for ``repository.update_touches``: the touch's current values with ``values`` applied."""
    return {
        "b_id": touch.touch_id,
        "b_status": values.get("status", touch.status),
        "b_reason": values.get("reason", touch.reason),
        "b_due": values.get("due", touch.due_at),
        "b_attempt_at": values.get("attempt_at", touch.attempt_at),
        "b_sent_at": values.get("sent_at", touch.sent_at),
        "b_attempts": values.get("attempts", touch.attempts),
        "b_staff": values.get("staff_id", touch.staff_id),
    }


async def fire_due_timers(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    queued: Queued | None = None,
) -> int:
    """Fires up to ``limit`` due timers in due order; returns how many. Safe with any number of workers.

    Set-based: one statement claims the timers with their enrolments and deletes the timers, one loads the
    persons, then the enrolments, next timers and touches are written in bulk. ``queued`` is then given the
    touch rows just inserted, in this transaction (the worker delivers those due now at once)."""
    due = await progress.take_due_timers(session, now=now, limit=limit)
    if not due:
        return 0
    persons = await repo.people_rows(session, keys=[(tenant, e.person_id) for tenant, _, e in due])
    plans: list[Planned] = []
    for tenant, step_id, enrolment in due:
        if enrolment.step_id != step_id:
            continue  # stale timer (the enrolment moved on): deleted, nothing to do
        definition = await repo.definition(
            session, tenant=tenant, journey_id=enrolment.journey_id, version=enrolment.version
        )
        person = persons.get((tenant, enrolment.person_id))
        view: PersonView = repo.person_view(enrolment.person_id, person)
        transition = machine.resume(definition, enrolment, view, now=now)
        staff = (person.owner_staff_id if person is not None else None) or machine.assign_staff(
            definition.staff_pool, enrolment.person_id
        )
        plans.append(Planned(tenant, definition, transition, staff))
    await progress.save_enrolments(session, saved=[p.transition.enrolment for p in plans], now=now)
    # Their timers are gone already: only new ones to set.
    # persons were read without a lock: read again after the guardrail locks.
    await _queue(session, plans, now=now, new=True, queued=queued, persons=None)
    return len(due)


async def merge(
    session: AsyncSession,
    *,
    tenant: str,
    survivor_id: str,
    merged_ids: Sequence[str],
    now: datetime,
    topics: TopicNames,
) -> None:
    """Folds merged persons into the survivor: enrolments and touches move (ids unchanged, so nothing is sent
    again); an enrolment the survivor already has an entry for is exited instead of duplicated."""
    survivor = await repo.ensure_person(session, tenant=tenant, person_id=survivor_id, now=now)
    rows = [await repo.person_row(session, tenant=tenant, person_id=m) for m in dict.fromkeys(merged_ids)]
    merged = [r for r in rows if r is not None]
    folded = people.fold(_person(survivor), [_person(r) for r in merged])
    friendship = folded.friendship
    await repo.update_person(
        session,
        tenant=tenant,
        person_id=survivor_id,
        tags=sorted(folded.tags),
        facts=dict(folded.facts),
        opted_out=folded.opted_out,
        paid_total_fen=folded.paid_total_fen,
        last_paid_at=folded.last_paid_at,
        owner_staff_id=friendship.owner_staff_id if friendship else None,
        external_userid=friendship.external_userid if friendship else None,
    )
    for row in merged:
        await repo.delete_person(session, tenant=tenant, person_id=row.person_id)
    for merged_id in merged_ids:
        duplicates = await progress.move_enrolments(
            session, tenant=tenant, merged_id=merged_id, survivor_id=survivor_id
        )
        await progress.move_touches(session, tenant=tenant, merged_id=merged_id, survivor_id=survivor_id)
        if duplicates:
            held = await progress.enrolments_by_id(session, ids=duplicates)
            await end(
                session, [machine.exit_now(e, "merged_duplicate") for _, e in held.values()], now=now, topics=topics
            )


def _person(row: Row[Any]) -> people.Person:
    return people.Person(
        tags=frozenset(row.tags),
        facts=dict(row.facts),
        opted_out=row.opted_out,
        paid_total_fen=row.paid_total_fen,
        last_paid_at=row.last_paid_at,
        friendship=people.friendship(row.owner_staff_id, row.external_userid),
    )
