from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from siyu_attribution.domain.plans import DEFAULT_PLAN, PlanBody, PlanVersion, RoleTerms, Tier, compiled, in_force


def version(n: int, day: int) -> PlanVersion:
    return PlanVersion(plan_id="std", version=n, effective_from=datetime(2026, 10, day, tzinfo=UTC), body=PlanBody())


def test_the_version_in_force_when_paid_prices_the_order() -> None:
    plans = [version(1, 1), version(2, 15), version(3, 20)]
    assert in_force(plans, datetime(2026, 10, 14, 23, tzinfo=UTC)).version == 1
    assert in_force(plans, datetime(2026, 10, 15, tzinfo=UTC)).version == 2
    assert in_force(plans, datetime(2026, 9, 30, tzinfo=UTC)) is DEFAULT_PLAN


def test_tiers_replace_rates_from_their_threshold_and_categories_fall_back_to_any() -> None:
    terms = RoleTerms(
        rates_bps={"*": 500, "skincare": 800},
        tiers=[Tier(min_gmv_fen=100, rates_bps={"*": 600}), Tier(min_gmv_fen=1_000, rates_bps={"skincare": 1_000})],
    )
    assert terms.rate_bps("makeup", 0) == 500
    assert terms.rate_bps("skincare", 0) == 800
    assert terms.rate_bps("makeup", 100) == 600
    assert terms.rate_bps("skincare", 100) == 800
    assert terms.rate_bps("skincare", 5_000) == 1_000
    assert terms.rate_bps(None, 5_000) == 600


def test_group_activators_earn_no_commission_by_default_and_rates_are_bounded() -> None:
    assert PlanBody().terms("group_activator").rate_bps(None, 10**9) == 0
    with pytest.raises(ValidationError):
        PlanBody(roles={"staff_1v1": RoleTerms(rates_bps={"*": 10_001})})
    with pytest.raises(ValidationError):
        PlanBody(position_weights=(0, 0, 0))


def test_a_body_is_compiled_once_and_a_changed_copy_on_its_own() -> None:
    body = PlanBody(roles={"staff_1v1": RoleTerms(rates_bps={"*": 300}, cap_per_order_fen=50)})
    assert compiled(body) is compiled(body)
    assert compiled(body).rates["staff_1v1"].rate_bps("makeup", 0) == 300
    assert compiled(body).rates["staff_1v1"].cap_per_order_fen == 50
    assert compiled(body).unpaid.rate_bps(None, 10**9) == 0
    changed = body.model_copy(update={"lookback_days": 3})
    assert compiled(changed).lookback.days == 3
    assert compiled(body).lookback.days == 30
