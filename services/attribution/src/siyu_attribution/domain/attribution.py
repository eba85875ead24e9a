"""Who earns an order: first claim (seed 004 §14), touch-based models, KOL/KOC source credit, auditor overrides."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from operator import attrgetter
from typing import Literal, NamedTuple

from siyu_attribution.domain.facts import ClaimFact, Evidence, OrderFacts, TouchFact
from siyu_attribution.domain.plans import ModelName, PlanBody, compiled
from siyu_shared.events.catalog.commissions import PayeeRole

CreditKind = Literal["commission", "activity"]
# A credit's weight is an exact rational: the integers 0 and 1 for the common cases (comparing and adding them is
# cheap), Fractions for the shares of a split.
Weight = Fraction | int
_ZERO: Weight = 0
_ONE: Weight = 1
_new = tuple.__new__  # a NamedTuple's own constructor is a Python-level __new__: several times the tuple's cost


class Credit(NamedTuple):
    """A payee's part in an order. ``weight`` is its share of the order's amount (0 for activity credit)."""

    payee_id: str
    role: PayeeRole
    weight: Weight
    kind: CreditKind
    basis: str
    pool: Literal["seller", "source"] = "seller"


class Decision(NamedTuple):
    model: str
    credits: tuple[Credit, ...]


def attribute(order: OrderFacts, evidence: Evidence, plan: PlanBody) -> Decision:
    """The credits of an order under ``plan`` given everything known now (re-run when late data arrives)."""
    paid_at = order.paid_at
    since = paid_at - compiled(plan).lookback
    window = [t for t in evidence.touches if since <= t.occurred_at <= paid_at]
    if len(window) > 1:
        window.sort(key=_touch_order)
    credits: list[Credit] = []
    model = plan.model
    overrides = [o for o in evidence.overrides if o.order_no == order.order_no] if evidence.overrides else None
    if overrides:
        latest = max(overrides, key=lambda o: (o.decided_at, o.seq, o.override_id))
        model_used = "override"
        credits.append(
            _new(
                Credit,
                (latest.payee_id, latest.payee_role, _ONE, "commission", f"override:{latest.override_id}", "seller"),
            )
        )
    else:
        claim = first_valid_claim(order, evidence, plan) if model == "first_claim" and evidence.claims else None
        if claim is not None:
            model_used = "first_claim"
            credits.append(
                _new(Credit, (claim.staff_id, "staff_1v1", _ONE, "commission", f"claim:{claim.claim_id}", "seller"))
            )
        else:
            touch_model = plan.fallback_model if model == "first_claim" else model
            model_used = touch_model if model == touch_model else f"{model}>{touch_model}"
            kinds = plan.touch_kinds
            paid = [t for t in window if t.kind != "group" and t.kind in kinds]
            if paid:
                credits += touch_credits(touch_model, paid, order, plan)
    credits += activity_credits(order, evidence, window)
    if evidence.sources:
        credits += source_credits(order, evidence)
    return _new(Decision, (model_used, tuple(credits)))


# Orders of evidence (C-level keys: these sort every order's touches and claims).
_touch_order = attrgetter("occurred_at", "touch_id")
_claim_order = attrgetter("claimed_at", "seq", "claim_id")


def first_valid_claim(order: OrderFacts, evidence: Evidence, plan: PlanBody) -> ClaimFact | None:
    """The first claim of the order number by a 1v1 staff inside the claim window; group activators never win it."""
    deadline = order.paid_at + compiled(plan).claim_window
    valid = [
        c
        for c in evidence.claims
        if c.order_no == order.order_no and c.role == "staff_1v1" and c.claimed_at <= deadline
    ]
    if not valid:
        return None
    return valid[0] if len(valid) == 1 else min(valid, key=_claim_order)


def activity_credits(order: OrderFacts, evidence: Evidence, window: Sequence[TouchFact]) -> list[Credit]:
    """Group activators who touched the buyer in the lookback window or claimed the order through a group."""
    seen: set[str] = set()
    out: list[Credit] = []
    for touch in window:
        staff = touch.staff_id
        if touch.kind == "group" and staff and staff not in seen:
            seen.add(staff)
            out.append(_new(Credit, (staff, "group_activator", _ZERO, "activity", f"touch:{touch.touch_id}", "seller")))
    claims = evidence.claims
    if claims:
        for claim in claims if len(claims) == 1 else sorted(claims, key=_claim_order):
            staff = claim.staff_id
            if claim.order_no == order.order_no and claim.role == "group_activator" and staff not in seen:
                seen.add(staff)
                out.append(
                    _new(Credit, (staff, "group_activator", _ZERO, "activity", f"claim:{claim.claim_id}", "seller"))
                )
    return out


def source_credits(order: OrderFacts, evidence: Evidence) -> list[Credit]:
    """The KOL/KOC whose content first brought the person in (before the order) earns its agreed share."""
    before = [s for s in evidence.sources if s.occurred_at <= order.paid_at]
    if not before:
        return []
    first = min(before, key=lambda s: (s.occurred_at, s.lead_id))
    basis = f"source:{first.lead_id}"
    return [Credit(first.partner_id, first.account_kind, _ONE, "commission", basis, "source")]


def _sole_touch(model: ModelName, n: int) -> int | None:
    """Which of ``n`` touches (``n`` > 0, sorted by time) a single-touch model credits in full; None if it spreads."""
    if model in ("last_touch", "first_claim"):
        return n - 1
    if model == "first_touch":
        return 0
    return None


def touch_weights(model: ModelName, touches: Sequence[TouchFact], order: OrderFacts, plan: PlanBody) -> list[Weight]:
    """The share of each touch (sorted by time) under a touch-based model; they sum to 1 (or 0 without touches)."""
    n = len(touches)
    if n == 0:
        return []
    sole = _sole_touch(model, n)
    if sole is not None:
        weights = [_ZERO] * n
        weights[sole] = _ONE
        return weights
    if model == "linear":
        return [Fraction(1, n)] * n
    if model == "time_decay":
        half_life_s = plan.half_life_hours * 3600
        ages = [(order.paid_at - t.occurred_at).total_seconds() for t in touches]
        raw = [Fraction(math.pow(2.0, -age / half_life_s)) for age in ages]
        whole = sum(raw, Fraction(0))
        if not whole:
            # Every touch is so many half-lives old that its weight underflowed to 0.0 (a short half-life, a long
            # lookback): the same decay measured from the newest touch, which weighs 1 and leaves a sum above 0.
            newest = min(ages)
            raw = [Fraction(math.pow(2.0, -(age - newest) / half_life_s)) for age in ages]
            whole = sum(raw, Fraction(0))
        return [w / whole for w in raw]
    first, middle, last = plan.position_weights
    if n == 1:
        return [_ONE]
    if n == 2:
        ends = Fraction(first + last) or Fraction(1)
        return [Fraction(first) / ends, Fraction(last) / ends]
    total = Fraction(first + middle + last)
    inner = Fraction(middle) / total / (n - 2)
    return [Fraction(first) / total, *([inner] * (n - 2)), Fraction(last) / total]


def touch_payee(touch: TouchFact) -> tuple[str, PayeeRole] | None:
    """Who a touch pays: the persona team for a persona's journey touch, else the staff; none for pure automation."""
    if touch.kind == "journey" and touch.persona:
        return f"persona:{touch.persona}", "persona_team"
    if touch.staff_id:
        return touch.staff_id, "staff_1v1"
    return None


def touch_credits(model: ModelName, touches: Sequence[TouchFact], order: OrderFacts, plan: PlanBody) -> list[Credit]:
    sole = _sole_touch(model, len(touches)) if touches else None
    if sole is not None:  # touch_weights would be all 0 but this touch's 1
        touch = touches[sole]
        payee = touch_payee(touch)
        if payee is None:
            return []  # the brand's own automation: no one earns a commission
        return [_new(Credit, (*payee, _ONE, "commission", f"{model}:touch:{touch.touch_id}", "seller"))]
    weights: dict[tuple[str, PayeeRole], Weight] = {}
    bases: dict[tuple[str, PayeeRole], str] = {}
    for touch, weight in zip(touches, touch_weights(model, touches, order, plan), strict=True):
        if not weight:
            continue
        payee = touch_payee(touch)
        if payee is None:
            continue  # the brand's own automation: that share earns no one a commission
        if payee in weights:
            weights[payee] += weight
        else:
            weights[payee] = weight
            bases[payee] = f"{model}:touch:{touch.touch_id}"
    return [_new(Credit, (p, r, w, "commission", bases[(p, r)], "seller")) for (p, r), w in weights.items()]
