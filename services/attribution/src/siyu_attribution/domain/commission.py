"""From credits to money: each credit's attributed amount (exact split of every line) and its commission."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from siyu_attribution.domain.attribution import Credit, Decision
from siyu_attribution.domain.facts import OrderFacts
from siyu_attribution.domain.money import apply_rate, split
from siyu_attribution.domain.plans import PlanBody
from siyu_shared.events.catalog.commissions import PayeeRole

PayeeKey = tuple[str, PayeeRole]


@dataclass(frozen=True, slots=True)
class Share:
    """One credit in money: the order amount attributed to the payee and the gross commission it earns."""

    payee_id: str
    role: PayeeRole
    kind: str
    basis: str
    base_fen: int
    gross_fen: int

    @property
    def key(self) -> PayeeKey:
        return (self.payee_id, self.role)


def shares(
    order: OrderFacts,
    decision: Decision,
    plan: PlanBody,
    *,
    month_gmv: Mapping[str, int] | None = None,
    month_commission: Mapping[str, int] | None = None,
) -> tuple[Share, ...]:
    """The money side of a decision, at the rates (tier by the payee's month-to-date GMV) and caps of ``plan``.

    Each line's amount is split over the pool's credits by largest remainder (what no one earns stays with the
    brand), so the attributed parts of a pool always sum exactly to the order amount.
    """
    month_gmv = month_gmv or {}
    month_commission = month_commission or {}
    out: list[Share] = []
    for pool in ("seller", "source"):
        credits = [c for c in decision.credits if c.kind == "commission" and c.pool == pool]
        if not credits:
            continue
        bases, grosses = _price(order, credits, plan, month_gmv)
        for credit, base, gross in zip(credits, bases, grosses, strict=True):
            terms = plan.terms(credit.role)
            if terms.cap_per_order_fen is not None:
                gross = min(gross, terms.cap_per_order_fen)
            if terms.cap_per_month_fen is not None:
                gross = max(0, min(gross, terms.cap_per_month_fen - month_commission.get(credit.payee_id, 0)))
            out.append(Share(credit.payee_id, credit.role, credit.kind, credit.basis, base, gross))
    out += [Share(c.payee_id, c.role, c.kind, c.basis, 0, 0) for c in decision.credits if c.kind == "activity"]
    return tuple(out)


def _price(
    order: OrderFacts, credits: Sequence[Credit], plan: PlanBody, month_gmv: Mapping[str, int]
) -> tuple[list[int], list[int]]:
    weights = [c.weight for c in credits]
    claimed = weights[0] if len(weights) == 1 else sum(weights, Fraction(0))
    if claimed.numerator < claimed.denominator:  # less than the whole order: the rest stays with the brand
        weights.append(1 - claimed)
    whole = len(weights) == 1  # one credit earning the whole order: no split needed
    terms = [plan.terms(c.role) for c in credits]
    gmv = [month_gmv.get(c.payee_id, 0) for c in credits]
    bases = [0] * len(credits)
    grosses = [0] * len(credits)
    for line in order.priced_lines:
        parts = [line.amount_fen] if whole else split(line.amount_fen, weights)
        for i in range(len(credits)):
            bases[i] += parts[i]
            grosses[i] += apply_rate(parts[i], terms[i].rate_bps(line.category, gmv[i]))
    return bases, grosses


def targets(order: OrderFacts, order_shares: Sequence[Share]) -> dict[PayeeKey, int]:
    """What the order should owe each payee now: gross commission scaled down by what was refunded.

    The order's total is scaled first (rounded down), then split over the payees by their gross with largest
    remainder, so the reversals are proportional and a full refund (or a closed order) brings every payee to zero.
    """
    paid = [s for s in order_shares if s.kind == "commission"]
    gross_total = sum(s.gross_fen for s in paid)
    total = gross_total * order.commissionable_fen // order.amount_fen if order.amount_fen else 0
    wanted: dict[PayeeKey, int] = {}
    if gross_total:
        for share, part in zip(paid, split(total, [s.gross_fen for s in paid]), strict=True):
            wanted[share.key] = wanted.get(share.key, 0) + part
    else:
        for share in paid:
            wanted[share.key] = 0
    return wanted
