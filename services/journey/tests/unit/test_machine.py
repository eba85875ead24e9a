"""The enrolment state machine on plain data with a fake clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from siyu_journey.domain.definition import Entry, parse_definition
from siyu_journey.domain.machine import (
    Enrolment,
    PersonView,
    assign_staff,
    enrolment_id,
    entry_key,
    exit_reason,
    pick_variant,
    resume,
    start,
    touch_id,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def journey(steps: list[dict[str, Any]], **extra: Any) -> Any:
    return parse_definition(
        {
            "id": "j",
            "name": "test",
            "trigger": {"event": "contact.added"},
            "steps": steps,
            "templates": {"hi": "你好", "coupon": "券"},
            **extra,
        }
    )


def enrolment(**changes: Any) -> Enrolment:
    return Enrolment(enrolment_id="e1", journey_id="j", version=1, person_id="p1", entered_at=NOW, **changes)


def test_send_then_wait_parks_on_a_timer_and_resumes_to_the_next_send() -> None:
    definition = journey(
        [
            {"id": "greet", "kind": "send", "template": "hi"},
            {"id": "a_day", "kind": "wait", "seconds": 86400},
            {"id": "offer", "kind": "send", "template": "coupon", "channel": "coupon"},
        ]
    )
    first = start(definition, enrolment(), PersonView("p1"), now=NOW)
    assert [t.step_id for t in first.touches] == ["greet"]
    assert first.timer is not None and first.timer.due_at == NOW + timedelta(days=1)
    assert first.enrolment.status == "active" and first.enrolment.step_id == "a_day"

    later = NOW + timedelta(days=1)
    second = resume(definition, first.enrolment, PersonView("p1"), now=later)
    assert [(t.step_id, t.channel) for t in second.touches] == [("offer", "coupon")]
    assert second.enrolment.status == "completed"
    assert second.timer is None


def test_touch_ids_are_deterministic_and_differ_per_occurrence() -> None:
    definition = journey(
        [
            {"id": "nudge", "kind": "send", "template": "hi"},
            {"id": "week", "kind": "wait", "seconds": 604800},
            {"id": "again", "kind": "goto", "target": "nudge"},
        ]
    )
    one = start(definition, enrolment(), PersonView("p1"), now=NOW)
    replay = start(definition, enrolment(), PersonView("p1"), now=NOW + timedelta(seconds=5))
    assert one.touches[0].touch_id == replay.touches[0].touch_id
    two = resume(definition, one.enrolment, PersonView("p1"), now=NOW + timedelta(days=7))
    assert two.touches[0].occurrence == 2
    assert two.touches[0].touch_id != one.touches[0].touch_id
    assert two.timer is not None and two.enrolment.status == "active"


def test_wait_until_local_time_of_day_is_shanghai_wall_clock() -> None:
    definition = journey(
        [{"id": "evening", "kind": "wait", "until_local": "20:00"}, {"id": "s", "kind": "send", "template": "hi"}]
    )
    out = start(definition, enrolment(), PersonView("p1"), now=NOW)  # 10:00 local
    assert out.timer is not None
    assert out.timer.due_at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 20:00 local the same day
    late = start(definition, enrolment(), PersonView("p1"), now=datetime(2026, 11, 23, 13, 0, tzinfo=UTC))
    assert late.timer is not None
    assert late.timer.due_at == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # 21:00 local: tomorrow


def test_branch_on_tags_facts_and_purchase_since_entry() -> None:
    definition = journey(
        [
            {"id": "oily", "kind": "branch", "condition": {"fact_eq": {"skin_type": "oily"}}, "then": "oil"},
            {"id": "dry", "kind": "send", "template": "hi"},
            {"id": "end", "kind": "exit", "reason": "done"},
            {"id": "oil", "kind": "send", "template": "coupon"},
        ]
    )
    oily = start(definition, enrolment(), PersonView("p1", facts={"skin_type": "oily"}), now=NOW)
    assert [t.step_id for t in oily.touches] == ["oil"] and oily.enrolment.status == "completed"
    dry = start(definition, enrolment(), PersonView("p1", facts={"skin_type": "dry"}), now=NOW)
    assert [t.step_id for t in dry.touches] == ["dry"]
    assert dry.enrolment.status == "exited" and dry.enrolment.exit_reason == "done"

    paid = journey(
        [
            {"id": "b", "kind": "branch", "condition": {"paid_since_entry": True}, "then": "x"},
            {"id": "nudge", "kind": "send", "template": "hi"},
            {"id": "x", "kind": "exit"},
        ]
    )
    bought = PersonView("p1", last_paid_at=NOW + timedelta(hours=1))
    assert start(paid, enrolment(), bought, now=NOW).touches == []
    assert len(start(paid, enrolment(), PersonView("p1"), now=NOW).touches) == 1


def test_split_is_deterministic_by_person_and_roughly_weighted() -> None:
    definition = journey(
        [
            {
                "id": "ab",
                "kind": "split",
                "variants": [{"name": "a", "weight": 1, "next": "a"}, {"name": "b", "weight": 1, "next": "b"}],
            },
            {"id": "a", "kind": "send", "template": "hi", "next": "end"},
            {"id": "b", "kind": "send", "template": "coupon"},
            {"id": "end", "kind": "exit"},
        ]
    )
    split = definition.steps[0]
    picks = [pick_variant(split, f"p{i}") for i in range(1000)]  # type: ignore[arg-type]
    assert picks == [pick_variant(split, f"p{i}") for i in range(1000)]  # type: ignore[arg-type]
    assert 400 < picks.count("a") < 600


def test_entry_policy_keys() -> None:
    assert entry_key(Entry(mode="once"), now=NOW, trigger_event_id="e1") == entry_key(
        Entry(mode="once"), now=NOW + timedelta(days=400), trigger_event_id="e2"
    )
    weekly = Entry(mode="once_per_period", period_days=7)
    assert entry_key(weekly, now=NOW, trigger_event_id="a") != entry_key(
        weekly, now=NOW + timedelta(days=7), trigger_event_id="a"
    )
    assert entry_key(Entry(mode="reentry"), now=NOW, trigger_event_id="a") != entry_key(
        Entry(mode="reentry"), now=NOW, trigger_event_id="b"
    )


def test_exit_rules() -> None:
    definition = journey(
        [{"id": "s", "kind": "send", "template": "hi"}], exit_on=["order.paid"], exit_on_tag_lost=["vip"]
    )
    assert exit_reason(definition, event="order.paid") == "order.paid"
    assert exit_reason(definition, event="contact.removed") is None
    assert exit_reason(definition, event="tags.changed", lost_tags=frozenset({"vip"})) == "tag_lost:vip"


def test_resume_of_a_finished_enrolment_does_nothing() -> None:
    definition = journey([{"id": "w", "kind": "wait", "seconds": 1}, {"id": "s", "kind": "send", "template": "hi"}])
    done = enrolment(status="exited", step_id="w", exit_reason="order.paid")
    assert resume(definition, done, PersonView("p1"), now=NOW).actions == ()


def test_staff_assignment_is_stable() -> None:
    pool = ["staff-a", "staff-b", "staff-c"]
    assert assign_staff(pool, "p1") == assign_staff(pool, "p1")
    assert {assign_staff(pool, f"p{i}") for i in range(100)} == set(pool)
    assert assign_staff([], "p1") is None


@pytest.mark.parametrize("bad", [{"id": "w", "kind": "wait"}, {"id": "w", "kind": "wait", "until_local": "25:00"}])
def test_malformed_waits_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="wait step"):
        journey([bad])


def test_ids_are_the_uuid5_they_always_were() -> None:
    """Touch and enrolment ids are stored and deduplicated on: the same text as ``uuid.uuid5`` gave, for good."""
    assert touch_id(enrolment="e-1", step_id="hello", occurrence=2) == str(
        uuid.uuid5(uuid.NAMESPACE_URL, "siyu:touch/e-1/hello/2")
    )
    assert enrolment_id(tenant="t", journey_id="j", version=3, person_id="p", key="once") == str(
        uuid.uuid5(uuid.NAMESPACE_URL, "siyu:enrolment/t/j/3/p/once")
    )
