"""Touches recorded by hand: accepted unless dated in the future, one id per tool id, retry vs conflict."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from siyu_journey.domain import recorded as rules

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _touch(**overrides: object) -> rules.RecordedTouch:
    fields: dict[str, object] = {
        "tenant": "brand",
        "client_id": "sidebar-1",
        "person_id": "p1",
        "channel": "wecom_group",
        "kind": "group",
        "staff_id": "act_lily",
        "occurred_at": NOW - timedelta(hours=1),
        "now": NOW,
    } | overrides
    return rules.recorded_touch(**fields)  # type: ignore[arg-type]


def test_the_touch_id_is_the_tenants_and_tools_id() -> None:
    assert _touch().touch_id == _touch(person_id="p2").touch_id
    assert _touch().touch_id != _touch(client_id="sidebar-2").touch_id
    assert _touch().touch_id != _touch(tenant="other").touch_id


def test_a_tool_clock_a_little_ahead_is_accepted_the_future_is_not() -> None:
    assert _touch(occurred_at=NOW + rules.CLOCK_SKEW).occurred_at == NOW + rules.CLOCK_SKEW
    with pytest.raises(rules.FutureTouch):
        _touch(occurred_at=NOW + rules.CLOCK_SKEW + timedelta(seconds=1))


def test_the_same_touch_again_is_a_retry_other_content_a_conflict() -> None:
    first = _touch()
    assert rules.again(first, _touch()) is rules.Again.RETRY
    assert rules.again(first, _touch(staff_id="act_mia")) is rules.Again.CONFLICT
    assert rules.again(first, replace(first, occurred_at=NOW)) is rules.Again.CONFLICT


def test_a_new_recording_is_a_sent_touch_of_its_kind() -> None:
    data, event_id = rules.sent(_touch())
    assert (data.touch_id, data.kind, data.channel, data.staff_id) == (
        _touch().touch_id,
        "group",
        "wecom_group",
        "act_lily",
    )
    assert event_id == rules.sent(_touch())[1] != rules.sent(_touch(client_id="sidebar-2"))[1]
