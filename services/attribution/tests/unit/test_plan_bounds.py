"""A commission plan refuses what could not be stored (``jsonb``) or priced with (issue 15): NUL in a category,
amounts beyond a bigint, a half-life that is not finite, unknown terms, categories and tiers beyond hand size.
And a short half-life prices an order instead of dividing by a sum that underflowed to zero."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from siyu_attribution.api.plans import PlanIn
from siyu_attribution.domain.attribution import touch_weights
from siyu_attribution.domain.facts import OrderFacts, TouchFact
from siyu_attribution.domain.plans import PlanBody
from siyu_devstack.hostile import at, replaced

PAID = datetime(2026, 10, 3, 12, tzinfo=UTC)
TERMS: dict[str, Any] = {
    "model": "time_decay",
    "roles": {
        "staff_1v1": {
            "rates_bps": {"*": 500, "skincare": 800},
            "tiers": [{"min_gmv_fen": 10_000_000, "rates_bps": {"*": 700}}],
            "cap_per_order_fen": 50_000,
            "cap_per_month_fen": 500_000,
        }
    },
}
AMOUNTS = [
    ("roles", "staff_1v1", "tiers", 0, "min_gmv_fen"),
    ("roles", "staff_1v1", "cap_per_order_fen"),
    ("roles", "staff_1v1", "cap_per_month_fen"),
    ("position_weights", 0),
]


def put(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    return replaced(document, at(path), value)


def test_the_terms_the_cases_start_from_are_accepted() -> None:
    PlanBody.model_validate({**TERMS, "position_weights": [40, 20, 40]})


@given(path=st.sampled_from(AMOUNTS), value=st.integers(min_value=2**63, max_value=2**100))
def test_amounts_beyond_a_bigint_are_refused(path: tuple[str | int, ...], value: int) -> None:
    body = put({**TERMS, "position_weights": [40, 20, 40]}, path, value)
    with pytest.raises(ValidationError):
        PlanBody.model_validate(body)
    PlanBody.model_validate(put({**TERMS, "position_weights": [40, 20, 40]}, path, 2**63 - 1))


@given(before=st.text(max_size=5), after=st.text(max_size=5))
def test_a_category_with_a_nul_is_refused(before: str, after: str) -> None:
    category = f"{before}\x00{after}"
    for path in [("roles", "staff_1v1", "rates_bps"), ("roles", "staff_1v1", "tiers", 0, "rates_bps")]:
        with pytest.raises(ValidationError, match="NUL"):
            PlanBody.model_validate(put(TERMS, path, {category: 100}))


@pytest.mark.parametrize("value", [math.inf, math.nan, -math.inf, 0.0, -1.0])
def test_the_half_life_is_a_finite_positive_number(value: float) -> None:
    with pytest.raises(ValidationError):
        PlanBody.model_validate({**TERMS, "half_life_hours": value})


@pytest.mark.parametrize(
    "extra", [{"modle": "linear"}, {"roles": {"kol": {"rate_bps": {"*": 1}}}}, {"roles": {"kol": {"tiers": [{}]}}}]
)
def test_an_unknown_term_is_refused_not_dropped(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PlanBody.model_validate({**TERMS, **extra})


def test_categories_and_tiers_are_of_hand_size() -> None:
    with pytest.raises(ValidationError):
        PlanBody.model_validate(put(TERMS, ("roles", "kol", "rates_bps"), {f"c{i}": 1 for i in range(1001)}))
    with pytest.raises(ValidationError):
        PlanBody.model_validate(put(TERMS, ("roles", "kol", "rates_bps"), {"c" * 129: 1}))
    tier = {"min_gmv_fen": 1, "rates_bps": {"*": 1}}
    with pytest.raises(ValidationError):
        PlanBody.model_validate(put(TERMS, ("roles", "kol", "tiers"), [tier] * 101))


@given(half_life_hours=st.floats(min_value=1e-6, max_value=1.0), days=st.integers(min_value=30, max_value=365))
def test_a_short_half_life_still_prices_an_order_all_to_the_newest_touch(half_life_hours: float, days: int) -> None:
    order = OrderFacts(order_id="o1", order_no="T1", person_id="p1", amount_fen=100_000, paid_at=PAID)
    touches = [
        TouchFact("old", "staff", "wecom_1v1", PAID - timedelta(days=days, hours=1), "a", None),
        TouchFact("new", "staff", "wecom_1v1", PAID - timedelta(days=days), "b", None),
    ]
    plan = PlanBody(model="time_decay", half_life_hours=half_life_hours, lookback_days=365)
    weights = touch_weights("time_decay", touches, order, plan)
    assert sum(weights) == 1
    assert weights[1] >= Fraction(1, 2) > weights[0]


@pytest.mark.parametrize(
    "effective_from", ["2026-11-01T00:00:00+23:30", "9999-12-31T20:00:00-14:00", "0001-01-01T03:00:00+14:00"]
)
def test_a_plan_takes_effect_only_at_a_time_every_layer_holds(effective_from: str) -> None:
    plan = {"plan_id": "std", "body": {"model": "linear"}}
    PlanIn.model_validate({**plan, "effective_from": "2026-11-01T00:00:00+08:00"})
    with pytest.raises(ValidationError, match=r"UTC offset|between 1900"):
        PlanIn.model_validate({**plan, "effective_from": effective_from})
