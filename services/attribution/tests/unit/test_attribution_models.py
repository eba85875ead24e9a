from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from siyu_attribution.domain.attribution import attribute, touch_credits, touch_weights
from siyu_attribution.domain.commission import shares
from siyu_attribution.domain.facts import ClaimFact, Evidence, Line, OrderFacts, OverrideFact, SourceFact, TouchFact
from siyu_attribution.domain.plans import PlanBody, RoleTerms, Tier

PAID = datetime(2026, 10, 3, 12, tzinfo=UTC)
ORDER = OrderFacts(order_id="o1", order_no="T1", person_id="p1", amount_fen=100_000, paid_at=PAID)


def touch(tid: str, kind: str, hours_before: float, staff: str | None = None, persona: str | None = None) -> TouchFact:
    return TouchFact(tid, kind, "wecom_1v1", PAID - timedelta(hours=hours_before), staff, persona)  # type: ignore[arg-type]


def claim(cid: str, staff: str, role: str, hours_after: float, seq: int = 0) -> ClaimFact:
    return ClaimFact(cid, "T1", staff, role, PAID + timedelta(hours=hours_after), seq)  # type: ignore[arg-type]


def by_payee(decision_credits: object) -> dict[tuple[str, str], tuple[str, Fraction | int]]:
    return {(c.payee_id, c.role): (c.kind, c.weight) for c in decision_credits}  # type: ignore[attr-defined]


def test_seed_004_first_claim_wins_and_the_group_activator_gets_activity_credit() -> None:
    evidence = Evidence(
        touches=(touch("g1", "group", 48, staff="activator"), touch("s1", "staff", 2, staff="other_1v1")),
        claims=(
            claim("c2", "later_1v1", "staff_1v1", 3),
            claim("c1", "first_1v1", "staff_1v1", 1),
            claim("c0", "activator", "group_activator", 0.5),
        ),
    )
    decision = attribute(ORDER, evidence, PlanBody())
    assert decision.model == "first_claim"
    assert by_payee(decision.credits) == {
        ("first_1v1", "staff_1v1"): ("commission", Fraction(1)),
        ("activator", "group_activator"): ("activity", Fraction(0)),
    }
    money = {s.key: s.gross_fen for s in shares(ORDER, decision, PlanBody())}
    assert money == {("first_1v1", "staff_1v1"): 5_000, ("activator", "group_activator"): 0}


def test_without_a_claim_the_fallback_touch_model_decides_and_an_override_beats_everything() -> None:
    evidence = Evidence(touches=(touch("s1", "staff", 5, staff="a"), touch("s2", "staff", 1, staff="b")))
    assert by_payee(attribute(ORDER, evidence, PlanBody()).credits) == {("b", "staff_1v1"): ("commission", 1)}
    overridden = Evidence(
        touches=evidence.touches,
        claims=(claim("c1", "a", "staff_1v1", 1),),
        overrides=(
            OverrideFact("x1", "T1", "c", "staff_1v1", "first look", PAID + timedelta(days=1)),
            OverrideFact("x2", "T1", "d", "staff_1v1", "chat log shows d", PAID + timedelta(days=2)),
        ),
    )
    decision = attribute(ORDER, overridden, PlanBody())
    assert decision.model == "override"
    assert by_payee(decision.credits) == {("d", "staff_1v1"): ("commission", 1)}


def test_claims_after_the_window_do_not_count() -> None:
    evidence = Evidence(claims=(claim("c1", "a", "staff_1v1", 24 * 31),))
    assert attribute(ORDER, evidence, PlanBody(claim_window_days=30)).credits == ()


def test_touch_models_weights() -> None:
    touches = [touch(f"t{i}", "staff", 10 - i, staff=f"s{i}") for i in range(5)]
    plan = PlanBody()
    assert touch_weights("first_touch", touches, ORDER, plan) == [1, 0, 0, 0, 0]
    assert touch_weights("last_touch", touches, ORDER, plan) == [0, 0, 0, 0, 1]
    assert touch_weights("linear", touches, ORDER, plan) == [Fraction(1, 5)] * 5
    assert touch_weights("position_based", touches, ORDER, plan) == [
        Fraction(2, 5),
        Fraction(1, 15),
        Fraction(1, 15),
        Fraction(1, 15),
        Fraction(2, 5),
    ]
    decay = touch_weights("time_decay", touches, ORDER, PlanBody(half_life_hours=1))
    assert sum(decay) == 1 and decay == sorted(decay)
    assert decay[-1] / decay[-2] == 2


def test_lookback_and_touch_kinds_filter_touches() -> None:
    evidence = Evidence(
        touches=(
            touch("old", "staff", 24 * 40, staff="old"),
            touch("j", "journey", 3, persona="xiaowan"),
            touch("s", "staff", 2, staff="s"),
        )
    )
    linear = PlanBody(model="linear", lookback_days=30)
    assert set(by_payee(attribute(ORDER, evidence, linear).credits)) == {
        ("persona:xiaowan", "persona_team"),
        ("s", "staff_1v1"),
    }
    staff_only = PlanBody(model="linear", touch_kinds=["staff"])
    assert by_payee(attribute(ORDER, evidence, staff_only).credits) == {("s", "staff_1v1"): ("commission", 1)}


def test_kol_source_credit_rates_by_category_tiers_and_caps() -> None:
    order = OrderFacts(
        order_id="o2",
        order_no="T2",
        person_id="p",
        amount_fen=30_000,
        paid_at=PAID,
        lines=(Line("l1", 10_000, "skincare"), Line("l2", 20_000, "makeup")),
    )
    evidence = Evidence(
        sources=(SourceFact("lead1", "kol_mia", "kol", PAID - timedelta(days=3)),),
        claims=(ClaimFact("c", "T2", "s", "staff_1v1", PAID),),
    )
    plan = PlanBody(
        roles={
            "staff_1v1": RoleTerms(
                rates_bps={"*": 500, "skincare": 800}, tiers=[Tier(min_gmv_fen=1_000_000, rates_bps={"*": 700})]
            ),
            "kol": RoleTerms(rates_bps={"*": 1000}, cap_per_order_fen=2_500),
        }
    )
    decision = attribute(order, evidence, plan)
    low = {s.key: (s.base_fen, s.gross_fen) for s in shares(order, decision, plan)}
    assert low == {("s", "staff_1v1"): (30_000, 800 + 1_000), ("kol_mia", "kol"): (30_000, 2_500)}
    high = {s.key: s.gross_fen for s in shares(order, decision, plan, month_gmv={"s": 2_000_000})}
    assert high[("s", "staff_1v1")] == 800 + 1_400
    capped = {s.key: s.gross_fen for s in shares(order, decision, plan, month_commission={"kol_mia": 0})}
    assert capped[("kol_mia", "kol")] == 2_500


def test_single_touch_models_credit_the_touch_their_weights_give_in_full() -> None:
    automation = touch("a", "journey", 1)  # no staff, no persona: the brand's own
    staff = [touch(f"t{i}", "staff", 10 - i, staff=f"s{i}") for i in range(3)]
    plan = PlanBody()
    for model, touches, expected in [
        ("last_touch", staff, [("s2", "staff_1v1", 1, "last_touch:touch:t2")]),
        ("first_claim", staff, [("s2", "staff_1v1", 1, "first_claim:touch:t2")]),
        ("first_touch", staff, [("s0", "staff_1v1", 1, "first_touch:touch:t0")]),
        ("last_touch", [*staff, automation], []),
        ("first_touch", [automation, *staff], []),
    ]:
        weights = touch_weights(model, touches, ORDER, plan)  # type: ignore[arg-type]
        assert sum(weights) == 1 and weights.count(1) == 1
        got = touch_credits(model, touches, ORDER, plan)  # type: ignore[arg-type]
        assert [(c.payee_id, c.role, c.weight, c.basis) for c in got] == expected
        assert all(c.kind == "commission" and c.pool == "seller" for c in got)
