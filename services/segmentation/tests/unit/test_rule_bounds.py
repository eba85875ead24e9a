"""The rule language refuses, naming where, what a rule could not be stored as (``jsonb``) or compiled to SQL with
(issue 15): NUL in text, integers beyond int64, numbers that are not finite, times outside what every layer holds,
and sizes beyond what an operator writes by hand. A rule body refuses the same, and a priority beyond its column."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from siyu_segmentation.domain.rules import MAX_DEPTH, MAX_ITEMS, RuleError, parse_condition, parse_duration
from siyu_segmentation.domain.tagging import INT32_MAX, RuleBody

Build = Callable[[Any], dict[str, Any]]
NUMBER_SLOTS: list[tuple[Build, str]] = [
    (lambda v: {"fact": "order_count", "gte": v}, "when.gte"),
    (lambda v: {"fact": "net_fen", "eq": v}, "when.eq"),
    (lambda v: {"fact": "net_fen", "in": [1, v]}, "when.in[1]"),
    (lambda v: {"fact": "paid_fen", "between": [v, v]}, "when.between[0]"),
    (lambda v: {"fact": "attr.age", "lt": v}, "when.lt"),
    (lambda v: {"fact": "attr.age", "eq": v}, "when.eq"),
    (lambda v: {"any": [{"sum": "orders.net_fen", "within": "30d", "gte": v}]}, "when.any[0].gte"),
]
TEXT_SLOTS: list[tuple[Build, str]] = [
    (lambda v: {"fact": "first_channel", "eq": v}, "when.eq"),
    (lambda v: {"fact": "channels", "in": ["tmall", v]}, "when.in[1]"),
    (lambda v: {"fact": "first_channel", "starts_with": v}, "when.starts_with"),
    (lambda v: {"fact": "categories", "contains": v}, "when.contains"),
    (lambda v: {"fact": "attr.skin_type", "in": [v]}, "when.in[0]"),
    (lambda v: {"count": "orders", "category": v, "gt": 1}, "when.category"),
    (lambda v: {"count": "touches", "channel": v, "gt": 1}, "when.channel"),
]
WILD_TIMES = [
    "2026-11-22T08:00:00+23:30",
    "2026-11-22T08:00:00-14:01",
    "0001-01-01T00:00:00+00:00",
    "1899-12-31T23:59:59+00:00",
    "9999-12-31T23:59:59+00:00",
    "9999-12-31T20:00:00-14:00",  # past year 9999 once in UTC: the shared check itself overflows on it
    "0001-01-01T03:00:00+14:00",
]


def refused_at(when: dict[str, Any], path: str) -> str:
    with pytest.raises(RuleError) as raised:
        parse_condition(when)
    assert raised.value.path == path
    return raised.value.message


@given(
    slot=st.sampled_from(NUMBER_SLOTS),
    value=st.one_of(st.integers(min_value=2**63, max_value=2**100), st.integers(max_value=-(2**63) - 1)),
)
def test_integers_beyond_int64_are_refused_where_they_are(slot: tuple[Build, str], value: int) -> None:
    build, path = slot
    assert "64 bits" in refused_at(build(value), path)


@pytest.mark.parametrize("slot", NUMBER_SLOTS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_numbers_must_be_finite(slot: tuple[Build, str], value: float) -> None:
    build, path = slot
    assert "finite" in refused_at(build(value), path)


@pytest.mark.parametrize("slot", NUMBER_SLOTS)
def test_the_ends_of_int64_are_fine(slot: tuple[Build, str]) -> None:
    build, _ = slot
    parse_condition(build(2**63 - 1))
    parse_condition(build(-(2**63)))


@given(slot=st.sampled_from(TEXT_SLOTS), before=st.text(max_size=5), after=st.text(max_size=5))
def test_nul_in_text_is_refused_where_it_is(slot: tuple[Build, str], before: str, after: str) -> None:
    build, path = slot
    assert "NUL" in refused_at(build(f"{before}\x00{after}"), path)


@pytest.mark.parametrize("value", WILD_TIMES)
def test_times_outside_what_every_layer_holds_are_refused(value: str) -> None:
    refused_at({"fact": "last_order_at", "gt": value}, "when.gt")
    refused_at({"fact": "last_order_at", "between": ["2026-01-01T00:00:00+08:00", value]}, "when.between[1]")
    parse_condition({"fact": "last_order_at", "gt": "2026-11-22T08:00:00+14:00"})


def test_sizes_are_bounded() -> None:
    leaf: dict[str, Any] = {"fact": "has_phone", "eq": True}
    nested = leaf
    for _ in range(MAX_DEPTH - 1):
        nested = {"not": nested}
    parse_condition(nested)
    assert "nest" in refused_at({"not": nested}, "when" + ".not" * MAX_DEPTH)
    parse_condition({"any": [leaf] * MAX_ITEMS})
    assert "at most" in refused_at({"any": [leaf] * (MAX_ITEMS + 1)}, "when.any")
    assert "at most" in refused_at({"fact": "net_fen", "in": list(range(MAX_ITEMS + 1))}, "when.in")
    assert "at most" in refused_at({"fact": "first_channel", "starts_with": "x" * 1001}, "when.starts_with")
    assert "at most" in refused_at({"count": "touches", "channel": "c" * 65, "gt": 1}, "when.channel")


def test_durations_are_ascii_digits_and_nothing_after() -> None:
    assert parse_duration("90d", "p").days == 90
    for raw in ["٩٠d", "90d\n", "90d "]:
        with pytest.raises(RuleError):
            parse_duration(raw, "p")


def test_a_rule_body_refuses_nul_keys_a_priority_beyond_its_column_and_nul_descriptions() -> None:
    when = {"fact": "has_phone", "eq": True}
    RuleBody(tag="t", priority=INT32_MAX, when=when)
    RuleBody(tag="t", priority=-INT32_MAX - 1, when=when)
    for body in [
        {"tag": "t", "priority": INT32_MAX + 1, "when": when},
        {"tag": "t", "priority": -INT32_MAX - 2, "when": when},
        {"tag": "t", "description": "a\x00", "when": when},
        {"tag": "t", "when": {**when, "x\x00": 1}},
        {"tag": "t", "when": {"fact": "net_fen", "gte": 2**64}},
    ]:
        with pytest.raises(ValidationError):
            RuleBody.model_validate(body)
