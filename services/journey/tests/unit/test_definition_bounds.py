"""A journey definition refuses what its columns, events and timers could not hold (issue 15): NUL in any text or key,
integers beyond int64 anywhere, a priority beyond ``touches.priority`` (an integer), a wait that would end past
what a time holds, floats that are not finite, names longer than the columns they reach, lists beyond hand size.
The guardrail policy likewise."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from siyu_devstack.hostile import at, replaced
from siyu_journey.api.recorded import RecordedTouchIn
from siyu_journey.domain.definition import INT32_MAX, MAX_STEPS, MAX_WAIT_SECONDS, parse_definition
from siyu_journey.domain.guardrails import GuardrailPolicy

BRANCHING: dict[str, Any] = {
    "id": "j",
    "name": "t",
    "trigger": {"event": "tag.added", "tag": "vip", "min_amount_fen": 100},
    "entry": {"mode": "once_per_period", "period_days": 30},
    "exit_on_tag_lost": ["vip"],
    "steps": [
        {"id": "b", "kind": "branch", "condition": {"fact_gte": {"paid": 1.5}, "fact_eq": {"tier": "a"}}, "then": "s"},
        {"id": "s", "kind": "send", "template": "hi", "campaign_id": "c1"},
        {"id": "w", "kind": "wait", "seconds": 60},
        {"id": "x", "kind": "exit", "reason": "goal"},
    ],
    "templates": {"hi": "hi"},
    "persona": "小完子",
    "staff_pool": ["xwz_01"],
    "priority": 5,
}
TEXT_PATHS = [
    ("name",),
    ("trigger", "tag"),
    ("exit_on_tag_lost", 0),
    ("steps", 0, "condition", "fact_eq", "tier"),
    ("steps", 1, "template"),
    ("steps", 1, "campaign_id"),
    ("steps", 3, "reason"),
    ("templates", "hi"),
    ("persona",),
    ("staff_pool", 0),
]
NUMBER_PATHS = [
    ("trigger", "min_amount_fen"),
    ("entry", "period_days"),
    ("steps", 0, "condition", "fact_gte", "paid"),
    ("steps", 0, "condition", "fact_eq", "tier"),
    ("steps", 2, "seconds"),
    ("priority",),
]


def put(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    return replaced(document, at(path), value)


def test_the_definition_the_cases_start_from_is_accepted() -> None:
    parse_definition(BRANCHING)


@given(path=st.sampled_from(TEXT_PATHS), before=st.text(max_size=5), after=st.text(max_size=5))
def test_nul_in_any_text_is_refused(path: tuple[str | int, ...], before: str, after: str) -> None:
    with pytest.raises(ValidationError, match="NUL"):
        parse_definition(put(BRANCHING, path, f"{before}\x00{after}"))


@given(key=st.sampled_from([("templates",), ("steps", 0, "condition", "fact_gte")]), name=st.text(max_size=5))
def test_nul_in_a_key_is_refused(key: tuple[str | int, ...], name: str) -> None:
    renamed = put(BRANCHING, key, {f"{name}\x00": 1 if key[0] == "steps" else "x"})
    with pytest.raises(ValidationError, match="NUL"):
        parse_definition(renamed)


@given(
    path=st.sampled_from(NUMBER_PATHS),
    value=st.one_of(st.integers(min_value=2**63, max_value=2**90), st.integers(max_value=-(2**63) - 1)),
)
def test_integers_beyond_int64_are_refused_even_where_a_float_would_take_them(
    path: tuple[str | int, ...], value: int
) -> None:
    with pytest.raises(ValidationError, match="beyond 64 bits"):
        parse_definition(put(BRANCHING, path, value))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_fact_thresholds_must_be_finite(value: float) -> None:
    for path in [("steps", 0, "condition", "fact_gte", "paid"), ("steps", 0, "condition", "fact_eq", "tier")]:
        with pytest.raises(ValidationError):
            parse_definition(put(BRANCHING, path, value))


@pytest.mark.parametrize(
    ("path", "highest"),
    [
        (("priority",), INT32_MAX),
        (("steps", 2, "seconds"), MAX_WAIT_SECONDS),
        (("entry", "period_days"), 100 * 366),
    ],
)
def test_numbers_stop_where_their_column_or_a_time_does(path: tuple[str | int, ...], highest: int) -> None:
    parse_definition(put(BRANCHING, path, highest))
    with pytest.raises(ValidationError):
        parse_definition(put(BRANCHING, path, highest + 1))


def test_the_lowest_priority_an_integer_column_holds() -> None:
    parse_definition(put(BRANCHING, ("priority",), -INT32_MAX - 1))
    with pytest.raises(ValidationError):
        parse_definition(put(BRANCHING, ("priority",), -INT32_MAX - 2))


@pytest.mark.parametrize("path", [("persona",), ("staff_pool", 0), ("steps", 1, "campaign_id"), ("trigger", "tag")])
def test_names_fit_the_varchar_64_they_reach(path: tuple[str | int, ...]) -> None:
    parse_definition(put(BRANCHING, path, "n" * 64))
    with pytest.raises(ValidationError):
        parse_definition(put(BRANCHING, path, "n" * 65))


def test_lists_are_of_hand_size() -> None:
    waits = [{"id": f"w{i}", "kind": "wait", "seconds": 1} for i in range(MAX_STEPS + 1)]
    with pytest.raises(ValidationError, match="steps"):
        parse_definition({**BRANCHING, "steps": waits})
    with pytest.raises(ValidationError, match="staff_pool"):
        parse_definition({**BRANCHING, "staff_pool": ["s"] * 1001})


def test_a_guardrail_policy_refuses_nul_channels_and_caps_beyond_a_count() -> None:
    GuardrailPolicy(daily_cap={"sms": 2**63 - 1})
    for caps in [{"sms\x00": 1}, {"sms": 2**63}, {"sms": -1}, {"c" * 33: 1}]:
        with pytest.raises(ValidationError):
            GuardrailPolicy.model_validate({"daily_cap": caps})


@pytest.mark.parametrize("hhmm", ["٠٨:٣٠", "08:30\n", "0８:30"])
def test_local_times_are_ascii_hh_mm(hhmm: str) -> None:
    wait = {"id": "w", "kind": "wait", "until_local": hhmm}
    with pytest.raises(ValidationError, match="HH:MM"):
        parse_definition({**BRANCHING, "steps": [wait]})
    with pytest.raises(ValidationError):
        GuardrailPolicy.model_validate({"quiet_start": hhmm})
    parse_definition({**BRANCHING, "steps": [{**wait, "until_local": "08:30"}]})
    GuardrailPolicy.model_validate({"quiet_start": "08:30"})


@pytest.mark.parametrize(
    "occurred_at", ["2026-11-22T08:15:00+23:30", "9999-12-31T20:00:00-14:00", "0001-01-01T03:00:00+14:00"]
)
def test_a_recorded_touch_takes_only_times_every_layer_holds(occurred_at: str) -> None:
    touch = {"id": "t1", "person_id": "p1", "channel": "wecom_1v1", "kind": "staff", "staff_id": "s1"}
    RecordedTouchIn.model_validate({**touch, "occurred_at": "2026-11-22T08:15:00+14:00"})
    with pytest.raises(ValidationError, match=r"UTC offset|between 1900"):
        RecordedTouchIn.model_validate({**touch, "occurred_at": occurred_at})
