"""The enrolment state machine: given an enrolment and what happened (entry, a timer firing, an event), the
actions to take. Pure: the caller loads state, calls, and saves the result with the actions in one transaction.

Control runs from step to step until it reaches a wait (the enrolment parks on a timer), the end (completed) or
an exit step (exited). Sends on the way become touches with a deterministic id, so re-running the same
transition after a crash yields the same touches, never new ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from siyu_journey.domain.definition import (
    Branch,
    Condition,
    Entry,
    Exit,
    Goto,
    JourneyDefinition,
    Send,
    Split,
    Wait,
)
from siyu_journey.domain.localtime import next_local_time, parse_hhmm
from siyu_shared.ids import url_ids

MAX_STEPS_PER_TRANSITION = 256
Status = Literal["active", "completed", "exited"]


@dataclass(frozen=True, slots=True)
class PersonView:
    """What the journey knows about a person when it decides."""

    person_id: str
    tags: frozenset[str] = frozenset()
    facts: Mapping[str, Any] = field(default_factory=dict)
    last_paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Enrolment:
    enrolment_id: str
    journey_id: str
    version: int
    person_id: str
    entered_at: datetime
    status: Status = "active"
    step_id: str | None = None
    visits: Mapping[str, int] = field(default_factory=dict)
    exit_reason: str | None = None


@dataclass(frozen=True, slots=True)
class QueueTouch:
    touch_id: str
    step_id: str
    occurrence: int
    channel: str
    template: str
    campaign_id: str | None


@dataclass(frozen=True, slots=True)
class ScheduleTimer:
    step_id: str
    due_at: datetime


Action = QueueTouch | ScheduleTimer


@dataclass(frozen=True, slots=True)
class Transition:
    enrolment: Enrolment
    actions: tuple[Action, ...]

    @property
    def touches(self) -> list[QueueTouch]:
        return [a for a in self.actions if isinstance(a, QueueTouch)]

    @property
    def timer(self) -> ScheduleTimer | None:
        return next((a for a in self.actions if isinstance(a, ScheduleTimer)), None)


def entry_key(entry: Entry, *, now: datetime, trigger_event_id: str) -> str:
    """What makes two entries the same entry: a second trigger with the same key does not enrol again."""
    match entry.mode:
        case "once":
            return "once"
        case "once_per_period":
            return f"period:{int(now.timestamp() // 86400) // entry.period_days}"
        case _:
            return f"event:{trigger_event_id}"


def enrolment_id(*, tenant: str, journey_id: str, version: int, person_id: str, key: str) -> str:
    return url_ids(f"siyu:enrolment/{tenant}/{journey_id}/{version}/{person_id}/{key}")


def touch_id(*, enrolment: str, step_id: str, occurrence: int) -> str:
    """Deterministic: the enrolment id fixes journey version, person and entry; plus the step and its visit."""
    return url_ids(f"siyu:touch/{enrolment}/{step_id}/{occurrence}")


def start(definition: JourneyDefinition, enrolment: Enrolment, person: PersonView, *, now: datetime) -> Transition:
    return _run(definition, enrolment, definition.steps[0].id, person, now)


def resume(definition: JourneyDefinition, enrolment: Enrolment, person: PersonView, *, now: datetime) -> Transition:
    """The timer of the wait the enrolment is parked on fired: carry on after that wait."""
    if enrolment.status != "active" or enrolment.step_id is None:
        return Transition(enrolment, ())
    return _run(definition, enrolment, definition.successor(enrolment.step_id), person, now)


def exit_now(enrolment: Enrolment, reason: str) -> Enrolment:
    return _replace(enrolment, status="exited", exit_reason=reason)


def exit_reason(definition: JourneyDefinition, *, event: str, lost_tags: frozenset[str] = frozenset()) -> str | None:
    """Why an event ends this journey for the person, or None if it does not."""
    if event in definition.exit_on:
        return event
    lost = lost_tags & set(definition.exit_on_tag_lost)
    return f"tag_lost:{sorted(lost)[0]}" if lost else None


def _run(
    definition: JourneyDefinition, enrolment: Enrolment, step_id: str | None, person: PersonView, now: datetime
) -> Transition:
    visits = dict(enrolment.visits)
    actions: list[Action] = []
    for _ in range(MAX_STEPS_PER_TRANSITION):
        if step_id is None:
            return Transition(_replace(enrolment, status="completed", step_id=None, visits=visits), tuple(actions))
        step = definition.step(step_id)
        visits[step_id] = occurrence = visits.get(step_id, 0) + 1
        match step:
            case Wait():
                due = (
                    now + timedelta(seconds=step.seconds)
                    if step.seconds is not None
                    else next_local_time(now, parse_hhmm(step.until_local or "00:00"))
                )
                actions.append(ScheduleTimer(step.id, due))
                return Transition(_replace(enrolment, step_id=step.id, visits=visits), tuple(actions))
            case Send():
                tid = touch_id(enrolment=enrolment.enrolment_id, step_id=step.id, occurrence=occurrence)
                actions.append(QueueTouch(tid, step.id, occurrence, step.channel, step.template, step.campaign_id))
                step_id = definition.successor(step.id)
            case Branch():
                if holds(step.condition, person, entered_at=enrolment.entered_at):
                    step_id = step.then
                else:
                    step_id = step.otherwise if step.otherwise is not None else definition.successor(step.id)
            case Split():
                step_id = pick_variant(step, person.person_id)
            case Goto():
                step_id = step.target
            case Exit():
                done = _replace(enrolment, status="exited", exit_reason=step.reason, step_id=step.id, visits=visits)
                return Transition(done, tuple(actions))
    raise RuntimeError(f"journey {definition.id} ran {MAX_STEPS_PER_TRANSITION} steps without a wait")


def holds(condition: Condition, person: PersonView, *, entered_at: datetime) -> bool:
    if condition.has_tag is not None and condition.has_tag not in person.tags:
        return False
    if condition.lacks_tag is not None and condition.lacks_tag in person.tags:
        return False
    for fact, minimum in condition.fact_gte.items():
        value = person.facts.get(fact)
        if not isinstance(value, int | float) or value < minimum:
            return False
    for fact, expected in condition.fact_eq.items():
        if person.facts.get(fact) != expected:
            return False
    if condition.paid_since_entry is not None:
        paid = person.last_paid_at is not None and person.last_paid_at >= entered_at
        if paid != condition.paid_since_entry:
            return False
    return True


def pick_variant(split: Split, person_id: str) -> str:
    """Deterministic by person and step: a stable hash, not Python's salted ``hash``."""
    digest = hashlib.sha256(f"{split.id}/{person_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % sum(v.weight for v in split.variants)
    for variant in split.variants:
        if point < variant.weight:
            return variant.next
        point -= variant.weight
    return split.variants[-1].next


def assign_staff(staff_pool: list[str], person_id: str) -> str | None:
    """The rule for a new contact without an owner: a stable spread over the persona's staff accounts."""
    if not staff_pool:
        return None
    digest = hashlib.sha256(person_id.encode()).digest()
    return staff_pool[int.from_bytes(digest[:8], "big") % len(staff_pool)]


def _replace(enrolment: Enrolment, **changes: Any) -> Enrolment:
    return replace(enrolment, **changes)
