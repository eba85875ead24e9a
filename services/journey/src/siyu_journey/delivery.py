"""Delivering queued touches: guardrails at send time, then the channel, then the outcome and its event.

For a channel that deduplicates on our touch id (the sandbox), the touch is sent inside the claiming
transaction and its outcome recorded in it: a crash anywhere leaves it pending, and the resend is a no-op at the
channel. For a channel without an idempotency key (WeCom), three steps, so a touch is never sent twice:
1. In one transaction: claim due ``pending`` touches (SKIP LOCKED), lock their persons, decide each with the
   guardrails: skip (recorded + ``siyu.touch.skipped``), defer (new due time + reason), or mark ``sending``.
2. Outside any transaction: hand the ``sending`` touches to their channel, with the touch id as idempotency key.
3. In one transaction: record each outcome (sent / failed / retry later) with its event through the outbox.

A crash between 2 and 3 leaves touches in ``sending`` whose outcome nobody knows. After a lease, recovery records
them ``failed`` with reason ``outcome_unknown`` rather than risk a second message (WeCom's send APIs take no
idempotency key): the window between the HTTP call and the commit is the one place a touch can be lost (if WeCom
did not in fact deliver it); it is recorded and visible, never silently dropped or duplicated. (Should a
``sending`` row ever belong to an idempotent channel, recovery re-queues it instead.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_journey.adapters import progress
from siyu_journey.adapters import repository as repo
from siyu_journey.adapters.senders import ChannelRouter, Delivered, Failed, Outgoing, RetryLater
from siyu_journey.domain import guardrails
from siyu_journey.domain.localtime import start_of_month, start_of_week
from siyu_journey.domain.people import friendship
from siyu_journey.domain.templates import render
from siyu_journey.service import change
from siyu_journey.touch_events import TouchOutcome, insert_decided, record
from siyu_shared.db.engine import SessionFactory, unit_of_work
from siyu_shared.events.topics import TopicNames
from siyu_shared.kafka.errors import is_infrastructure_failure
from siyu_shared.logging import get_logger

Clock = Callable[[], datetime]
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    batch: int = 500
    max_attempts: int = 5
    lease: timedelta = timedelta(minutes=5)


async def deliver_round(
    *, sessions: SessionFactory, sender: ChannelRouter, clock: Clock, topics: TopicNames, config: DeliveryConfig
) -> int:
    """One round; returns how many touches it claimed."""
    now = clock()
    async with unit_of_work(sessions) as session:
        rows = await progress.claim_pending_touches(session, now=now, limit=config.batch)
        if not rows:
            return 0
        claimed, later = await decide_and_send(session, rows, now=now, sender=sender, topics=topics, config=config)
    if later:
        outcomes = await sender.send(later)
        await record_outcomes(
            sessions=sessions,
            results=[(claimed[o.touch_id], o.staff_id, r) for o, r in zip(later, outcomes, strict=True)],
            clock=clock,
            topics=topics,
            config=config,
        )
    return len(rows) or 1


@dataclass(slots=True)
class _Decided:
    changes: list[dict[str, Any]]
    """``change`` rows: the decided (and, for channels that deduplicate, sent) touches' new values."""
    events: list[TouchOutcome]
    claimed: dict[str, Any]
    later: list[Outgoing]


async def decide_and_send(
    session: AsyncSession,
    rows: Sequence[Any],
    *,
    now: datetime,
    sender: ChannelRouter,
    topics: TopicNames,
    config: DeliveryConfig,
    persons: Mapping[tuple[str, str], Any] | None = None,
) -> tuple[dict[str, Any], list[Outgoing]]:
    """``decide`` for touch rows this transaction holds, its outcomes recorded with their events. Returns the
    claimed rows by id and what is left for phase 2 (rows whose person another transaction holds are left alone)."""
    decided = await decide(session, rows, now=now, sender=sender, config=config, persons=persons)
    await record(session, decided.changes, decided.events, topics=topics)
    return decided.claimed, decided.later


async def decide(
    session: AsyncSession,
    rows: Sequence[Any],
    *,
    now: datetime,
    sender: ChannelRouter,
    config: DeliveryConfig,
    persons: Mapping[tuple[str, str], Any] | None = None,
) -> _Decided:
    """Phase 1 (and, for channels that deduplicate on the touch id, the send and its outcome) for touch rows this
    transaction holds: persons locked (a person another worker holds is left for later), guardrails decided,
    what to record (their new values and events), not yet written.

    ``persons``: people rows this transaction already holds locked (current, and nobody can change them before it
    commits), by (tenant, person); the others are read after the guardrail locks."""
    outgoing: list[Outgoing] = []
    claimed: dict[str, Any] = {}
    locked, stored = await progress.lock_people_with_policies(session, keys=[(t.tenant, t.person_id) for t in rows])
    rows = [t for t in rows if (t.tenant, t.person_id) in locked]
    since = min(start_of_month(now), start_of_week(now))
    history = await progress.recent_touches(session, keys=locked, since=since)
    held = {k: persons[k] for k in locked if k in persons} if persons else {}
    persons = held | await repo.people_rows(session, keys=locked - held.keys())
    policies = {tenant: repo.parse_policy(raw) for tenant, raw in stored.items()}
    changes: list[dict[str, Any]] = []
    sending: dict[str, dict[str, Any]] = {}
    events: list[TouchOutcome] = []
    for touch in rows:
        person = persons.get((touch.tenant, touch.person_id))
        status = guardrails.PersonStatus(
            opted_out=bool(person and person.opted_out),
            consents=frozenset(person.consents if person else ()),
            wecom_contact=person is not None and friendship(person.owner_staff_id, person.external_userid) is not None,
        )
        past = history.setdefault((touch.tenant, touch.person_id), [])
        decision = guardrails.decide(
            channel=touch.channel,
            priority=touch.priority,
            person=status,
            history=past,
            policy=policies[touch.tenant],
            now=now,
        )
        if isinstance(decision, guardrails.Skip):
            changes.append(change(touch, status="skipped", reason=decision.reason))
            events.append(TouchOutcome(touch, "skipped", now, reason=decision.reason))
            continue
        if isinstance(decision, guardrails.Defer):
            changes.append(change(touch, due=decision.until, reason=decision.reason))
            continue
        staff = touch.staff_id or (person.owner_staff_id if person else None)
        definition = await repo.definition(
            session, tenant=touch.tenant, journey_id=touch.journey_id, version=touch.version
        )
        try:
            body = render(
                definition.templates[touch.template],
                {
                    "persona": touch.persona or "",
                    "staff_id": staff or "",
                    "tags": list(person.tags) if person else [],
                    "facts": dict(person.facts) if person else {},
                },
            )
        except Exception as exc:  # a template that cannot render never will: record it, do not retry
            reason = f"template_error: {type(exc).__name__}"
            changes.append(change(touch, status="failed", reason=reason))
            events.append(TouchOutcome(touch, "failed", now, reason=reason))
            continue
        past.append(guardrails.PastTouch(touch.channel, now, touch.priority, touch.campaign_id))
        sending[touch.touch_id] = change(
            touch, status="sending", attempt_at=now, sent_at=now, staff_id=staff, attempts=touch.attempts + 1
        )
        claimed[touch.touch_id] = touch
        outgoing.append(
            Outgoing(
                touch.touch_id,
                touch.tenant,
                touch.person_id,
                touch.channel,
                staff,
                touch.persona,
                body,
                recipient=person.external_userid if person else None,
            )
        )
    inline = [o for o in outgoing if sender.for_channel(o.channel).idempotent]
    later = [o for o in outgoing if not sender.for_channel(o.channel).idempotent]
    if inline:
        # The channel deduplicates on the touch id: send inside this transaction and record the outcome in
        # it. Should the commit fail after the send, the touch is still pending and the resend is a no-op.
        outcomes = await sender.send(inline)
        done, done_events = _outcomes(
            [(claimed[o.touch_id], o.staff_id, r) for o, r in zip(inline, outcomes, strict=True)], now, config
        )
        changes += done
        events += done_events
    changes += [sending[o.touch_id] for o in later]
    return _Decided(changes, events, claimed, later)


async def deliver_now(
    session: AsyncSession,
    rows: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    sender: ChannelRouter,
    topics: TopicNames,
    config: DeliveryConfig,
    persons: Mapping[tuple[str, str], Any] | None = None,
) -> tuple[set[str], bool]:
    """Touches about to be queued in this transaction (a timer fired, an event enrolled someone), as touches rows
    (``service.touch_rows``): those due now through a channel that deduplicates on the touch id are decided and
    sent at once, as a delivery round would, and inserted as decided (sent, skipped, deferred…) with their events:
    one insert instead of an insert and an update. The others (other channels, persons another worker holds) are
    for the caller to insert pending, for the delivery loop.

    Returns the ids of the touches inserted here, and whether any of ``rows`` is left for the delivery loop.

    No savepoint (two round trips): up to the insert this transaction only reads and takes try-locks, so should
    deciding or sending fail (a channel down, a bug), nothing of it is written and the caller queues them all
    pending, as before (unless this transaction is lost, e.g. a failed statement: then that error is raised for
    the caller to retry, as an outage of the database is). The insert then writes the decided touches and the
    events of those it did insert, in one statement: a touch id that exists already (it cannot: its enrolment is
    locked and its occurrence new) keeps its row and gets no event of this decision; what was sent for it went
    through a channel that deduplicates on the touch id."""
    ready = [t for t in rows if t["due_at"] <= now and sender.for_channel(t["channel"]).idempotent]
    if not ready:
        return set(), bool(rows)
    try:
        decided = await decide(
            session, [SimpleNamespace(**t) for t in ready], now=now, sender=sender, config=config, persons=persons
        )
    except Exception as exc:
        if is_infrastructure_failure(exc) or not await _usable(session):
            raise
        log.warning("inline_delivery_failed", touches=len(ready), error=repr(exc))
        return set(), True
    assert not decided.later  # only channels that deduplicate on the touch id here
    by_id = {t["touch_id"]: t for t in ready}
    final = [{**by_id[c["b_id"]], **_values(c)} for c in decided.changes]
    inserted = await insert_decided(session, final, decided.events, topics=topics)
    if len(inserted) != len(final):
        log.warning("inline_touch_exists", touches=sorted(set(by_id) - inserted)[:5])
    return inserted, len(inserted) < len(rows)


async def _usable(session: AsyncSession) -> bool:
    """Whether the session's transaction can still run statements (a failed statement aborts it)."""
    try:
        await session.execute(text("SELECT 1"))
    except DBAPIError:
        return False
    return True


def _values(c: Mapping[str, Any]) -> dict[str, Any]:
    """A ``change`` row as touches columns."""
    return {
        "status": c["b_status"],
        "reason": c["b_reason"],
        "due_at": c["b_due"],
        "attempt_at": c["b_attempt_at"],
        "sent_at": c["b_sent_at"],
        "attempts": c["b_attempts"],
        "staff_id": c["b_staff"],
    }


def _outcomes(
    results: list[tuple[Any, str | None, Delivered | Failed | RetryLater]], now: datetime, config: DeliveryConfig
) -> tuple[list[dict[str, Any]], list[TouchOutcome]]:
    changes: list[dict[str, Any]] = []
    events: list[TouchOutcome] = []
    for touch, staff, outcome in results:
        attempts = touch.attempts + 1
        if isinstance(outcome, Delivered):
            changes.append(change(touch, status="sent", sent_at=now, attempt_at=now, staff_id=staff, attempts=attempts))
            events.append(TouchOutcome(touch, "sent", now, staff_id=staff))
        elif isinstance(outcome, RetryLater) and attempts < config.max_attempts:
            changes.append(
                change(
                    touch,
                    status="pending",
                    reason=outcome.reason,
                    due=now + timedelta(seconds=outcome.after_s),
                    staff_id=staff,
                    attempts=attempts,
                )
            )
        else:
            reason = outcome.reason if isinstance(outcome, Failed | RetryLater) else "failed"
            changes.append(change(touch, status="failed", reason=reason, staff_id=staff, attempts=attempts))
            events.append(TouchOutcome(touch, "failed", now, reason=reason, staff_id=staff))
    return changes, events


async def record_outcomes(
    *,
    sessions: SessionFactory,
    results: list[tuple[Any, str | None, Delivered | Failed | RetryLater]],
    clock: Clock,
    topics: TopicNames,
    config: DeliveryConfig,
) -> None:
    """Phase 3 for channels without an idempotency key (see the module docstring)."""
    changes, events = _outcomes(results, clock(), config)
    async with unit_of_work(sessions) as session:
        await record(session, changes, events, topics=topics)


async def recover_stale(
    *, sessions: SessionFactory, sender: ChannelRouter, clock: Clock, topics: TopicNames, config: DeliveryConfig
) -> int:
    """Touches left in ``sending`` by a crash (see the module docstring)."""
    now = clock()
    async with unit_of_work(sessions) as session:
        stale = await progress.stale_sending(session, before=now - config.lease, limit=config.batch)
        changes: list[dict[str, Any]] = []
        events: list[TouchOutcome] = []
        for touch in stale:
            if sender.for_channel(touch.channel).idempotent:
                changes.append(change(touch, status="pending", due=now, sent_at=None, reason="resumed_after_crash"))
            else:
                changes.append(change(touch, status="failed", reason="outcome_unknown"))
                events.append(TouchOutcome(touch, "failed", now, reason="outcome_unknown"))
        await record(session, changes, events, topics=topics)
    return len(stale)
