"""The touch events' fast JSON is byte for byte the reference envelope's (``touch_event(...).to_json()``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from siyu_journey.domain.templates import render
from siyu_journey.touch_events import Outcome, TouchOutcome, touch_event
from siyu_shared.events.envelope import deterministic_event_id


def _touch(**changes: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "touch_id": "7d0b7a56-3c1e-5d7e-9a59-0f3f0c8c4b11",
        "tenant": "glowlab",
        "person_id": "p-1",
        "channel": "wecom_1v1",
        "journey_id": "greeting",
        "version": 3,
        "step_id": "hello",
        "staff_id": None,
        "persona": "小完子",
        "campaign_id": None,
    }
    return SimpleNamespace(**(values | changes))


AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
CASES: list[tuple[SimpleNamespace, Outcome, datetime, str | None, str | None]] = [
    (_touch(), "sent", AT, None, "staff-1"),
    (_touch(staff_id="staff-9"), "sent", AT + timedelta(microseconds=123456), None, None),
    (_touch(campaign_id="double11", persona=None), "skipped", AT, "daily_cap", None),
    (_touch(), "skipped", AT, None, None),
    (_touch(channel="sms"), "failed", AT, "template_error: UndefinedError", "s2"),
    (_touch(), "failed", AT, None, None),
    (_touch(person_id="p\"\\'你好"), "sent", AT.astimezone(timezone(timedelta(hours=8))), None, None),
    (_touch(channel="not-a-channel"), "sent", AT, None, None),
    (_touch(person_id="p" * 65), "sent", AT, None, None),
    (_touch(tenant="t" * 65), "sent", AT, None, None),
    (_touch(tenant=""), "skipped", AT, "daily_cap", None),
    (_touch(), "sent", AT.replace(tzinfo=None), None, None),
    (_touch(version="3"), "sent", AT, None, None),  # coerced by the model: the reference path gives its bytes
]


@pytest.mark.parametrize(("touch", "outcome", "at", "reason", "staff"), CASES)
def test_fast_json_is_the_reference_envelope(
    touch: SimpleNamespace, outcome: Outcome, at: datetime, reason: str | None, staff: str | None
) -> None:
    fast = TouchOutcome(touch, outcome, at, reason=reason, staff_id=staff)
    try:
        reference = touch_event(touch, outcome, at=at, reason=reason, staff_id=staff)
    except ValueError:
        with pytest.raises(ValueError):
            fast.payload()
        return
    assert fast.payload() == reference.to_json()
    assert fast.serialized().payload == reference.to_json()
    assert fast.serialized().event_id == reference.id
    assert fast.event_id == reference.id == deterministic_event_id("touch", touch.tenant, touch.touch_id, outcome)
    assert fast.event_type == reference.type


def test_rendered_copy_is_the_same_cached_or_not() -> None:
    variables = {"persona": "小完子", "staff_id": "s1", "tags": ["a", "b"], "facts": {"skin": "dry"}}
    for source in (
        "你好，我是{{ persona }}",
        "{{ staff_id }}/{{ persona }}",
        "{{ tags|join(',') }}",
        "{{ facts.skin }}",
    ):
        assert render(source, variables) == render(source, variables)
    assert render("你好，我是{{ persona }}", variables) == "你好，我是小完子"
    assert render("{{ tags|join(',') }}-{{ persona }}", variables) == "a,b-小完子"
