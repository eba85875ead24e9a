"""The rule language on plain data: parsing with precise errors, evaluation, windows and edge values."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from siyu_segmentation.api.routes import RULE_EXAMPLE, MembersQuery
from siyu_segmentation.domain.rules import (
    RuleError,
    depends_on_time,
    parse_condition,
    parse_duration,
    referenced_facts,
)
from siyu_segmentation.domain.tagging import RuleBody, validate_rule

from ..conftest import NOW, Case, holds


def test_each_case_evaluates_as_expected(rule_case: Case) -> None:
    assert holds(parse_condition(rule_case.when), rule_case.profile, NOW) is rule_case.expected


@pytest.mark.parametrize(
    ("when", "path", "message"),
    [
        (
            {
                "all": [
                    {"fact": "order_count", "gte": 1},
                    {"fact": "paid_fen", "gte": 1},
                    {"fact": "net_fen", "gte": "x"},
                ]
            },
            "when.all[2].gte",
            "expected a number",
        ),
        ({"fact": "nope", "eq": 1}, "when.fact", "unknown fact"),
        ({"fact": "order_count"}, "when", "exactly one operator"),
        ({"fact": "order_count", "gt": 1, "lt": 5}, "when", "exactly one operator"),
        ({"fact": "channels", "gt": 1}, "when.gt", "operator not allowed"),
        ({"fact": "last_order_at", "within": "90 days"}, "when.within", "duration"),
        ({"fact": "last_order_at", "gt": "2026-01-01"}, "when.gt", "timezone"),
        ({"fact": "net_fen", "between": [5, 1]}, "when.between", "low is above high"),
        ({"fact": "net_fen", "between": [5]}, "when.between", "[low, high]"),
        ({"fact": "order_count", "in": []}, "when.in", "non-empty list"),
        ({"fact": "first_channel", "in": ["a", 2]}, "when.in[1]", "expected a string"),
        ({"any": []}, "when.any", "non-empty list"),
        ({"not": {"sum": "touches", "gt": 1}}, "when.not.sum", "only be counted"),
        ({"sum": "orders.price", "gt": 1}, "when.sum", "field one of"),
        ({"count": "orders", "within": "1y", "gt": 1}, "when.within", "duration"),
        ({"count": "orders", "channel": "x", "gt": 1}, "when.channel", "only touches"),
        ({"count": "orders", "gt": True}, "when.gt", "expected a number"),
        ({"fact": "attr.bad name", "eq": 1}, "when.fact", "attribute names"),
        ({"fact": "order_count", "gte": 1, "bogus": 2}, "when", "unknown key"),
        ([1, 2], "when", "expected an object"),
        ({"all": [{"fact": "order_count", "gte": 1}], "any": []}, "when", "stands alone"),
    ],
)
def test_invalid_rules_point_at_the_bad_part(when: Any, path: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_condition(when)
    assert caught.value.path == path
    assert message in caught.value.message


def test_rule_body_reports_the_path_through_pydantic() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_rule({"tag": "Bad Tag", "when": {"fact": "order_count", "gte": 1}})
    assert "tag" in str(caught.value)
    with pytest.raises(RuleError, match=r"when\.all\[0\]\.gte: expected a number"):
        validate_rule({"tag": "x", "when": {"all": [{"fact": "order_count", "gte": []}]}})


def test_durations() -> None:
    assert parse_duration("90d", "p") == timedelta(days=90)
    assert parse_duration("36h", "p") == timedelta(hours=36)
    assert parse_duration("2w", "p") == timedelta(days=14)
    for bad in ("", "d", "-1d", "1.5d", "10y", 90):
        with pytest.raises(RuleError):
            parse_duration(bad, "p")


def test_time_dependence_and_references() -> None:
    assert depends_on_time(parse_condition({"fact": "last_order_at", "older_than": "90d"}))
    assert depends_on_time(parse_condition({"not": {"count": "orders", "within": "365d", "gt": 10}}))
    assert not depends_on_time(parse_condition({"count": "orders", "gt": 10}))
    assert not depends_on_time(parse_condition({"fact": "last_order_at", "lt": "2026-01-01T00:00:00Z"}))
    cond = parse_condition({"all": [{"fact": "net_fen", "gt": 1}, {"any": [{"fact": "attr.city", "eq": "sh"}]}]})
    assert referenced_facts(cond) == ["attr.city", "net_fen"]


def test_dormancy_turns_on_exactly_after_day_90() -> None:
    from ..conftest import ALICE

    dormant = parse_condition({"fact": "last_order_at", "older_than": "90d"})
    assert not holds(dormant, ALICE, NOW)  # day 90: not yet
    assert holds(dormant, ALICE, NOW + timedelta(seconds=1))  # a moment later: dormant
    assert holds(dormant, ALICE, NOW + timedelta(days=1))  # day 91


def test_the_api_examples_are_rules_the_language_accepts() -> None:
    """OpenAPI types `when` as any object: that its examples parse is checked here (the shape by the OpenAPI test)."""
    RuleBody.model_validate(RULE_EXAMPLE)
    for example in MembersQuery.model_json_schema()["examples"]:
        parse_condition(MembersQuery.model_validate(example).when)
