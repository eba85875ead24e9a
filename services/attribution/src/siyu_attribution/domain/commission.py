"""From credits to money: each credit's attributed amount (exact split of every line) and its commission."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import NamedTuple

from siyu_attribution.domain.attribution import Credit, Decision
from siyu_attribution.domain.facts import Line, OrderFacts
from siyu_attribution.domain.money import apply_rate, scale, scale_each, split
from siyu_attribution.domain.plans import PlanBody, Rates, compiled
from siyu_shared.events.catalog.commissions import PayeeRole

PayeeKey = tuple[str, PayeeRole]
_new_share = tuple.__new__  # Share(...) goes through a Python-level __new__: several times the tuple's cost


class Share(NamedTuple):
    """One credit in money: the order amount attributed to the payee and the gross commission it earns (a tuple,
    in the column order of ``attribution_shares`` after the order, attribution and position)."""

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
    plan_rates = compiled(plan)
    rates, unpaid = plan_rates.rates, plan_rates.unpaid
    seller: list[Credit] = []
    source: list[Credit] = []
    activity: list[Share] = []
    for credit in decision.credits:
        if credit.kind == "activity":
            activity.append(_new_share(Share, (credit.payee_id, credit.role, credit.kind, credit.basis, 0, 0)))
        elif credit.pool == "seller":
            seller.append(credit)
        else:
            source.append(credit)
    out: list[Share] = []
    lines = order.priced_lines
    for credits in (seller, source):
        if not credits:
            continue
        priced: Iterable[tuple[Credit, Rates, int, int]]
        if len(credits) == 1 and credits[0].weight >= 1:  # one credit earning the whole order: no split needed
            credit = credits[0]
            role_terms = rates.get(credit.role, unpaid)
            gmv = month_gmv.get(credit.payee_id, 0) if month_gmv else 0
            table, default = role_terms.at(gmv) if role_terms.tiers else (role_terms.table, role_terms.default)
            base = gross = 0
            for line in lines:  # _price with every part the line's amount
                amount = line.amount_fen
                base += amount
                gross += apply_rate(amount, table.get(line.category, default))
            priced = ((credit, role_terms, base, gross),)
        else:
            terms = [rates.get(c.role, unpaid) for c in credits]
            priced = zip(credits, terms, *_price(lines, credits, terms, month_gmv), strict=True)
        for credit, role_terms, base, gross in priced:
            if role_terms.cap_per_order_fen is not None:
                gross = min(gross, role_terms.cap_per_order_fen)
            if role_terms.cap_per_month_fen is not None:
                paid = month_commission.get(credit.payee_id, 0) if month_commission else 0
                gross = max(0, min(gross, role_terms.cap_per_month_fen - paid))
            out.append(_new_share(Share, (credit.payee_id, credit.role, credit.kind, credit.basis, base, gross)))
    return (*out, *activity)


def _price(
    lines: Sequence[Line], credits: Sequence[Credit], terms: Sequence[Rates], month_gmv: Mapping[str, int] | None
) -> tuple[list[int], list[int]]:
    """Per credit: the part of every line it earns (largest remainder over the credits' weights) and its commission
    at the role's rate for the line's category."""
    weights = [c.weight for c in credits]
    claimed = sum(weights, Fraction(0))
    if claimed < 1:
        weights.append(1 - claimed)  # less than the whole order: the rest stays with the brand
    tables = [t.at(month_gmv.get(c.payee_id, 0) if month_gmv else 0) for c, t in zip(credits, terms, strict=True)]
    bases = [0] * len(credits)
    grosses = [0] * len(credits)
    for line in lines:
        parts = split(line.amount_fen, weights)
        category = line.category
        for i, (table, default) in enumerate(tables):
            bases[i] += parts[i]
            grosses[i] += apply_rate(parts[i], table.get(category, default))
    return bases, grosses


def targets(order: OrderFacts, order_shares: Sequence[Share]) -> dict[PayeeKey, int]:
    """What the order should owe each payee now: gross commission scaled down by what was refunded.

    Each payee's gross is scaled by what is still commissionable, the total rounded down and the fen lost to
    rounding given by largest remainder (``money.scale_each``): the reversals are proportional, none a fen past its
    payee's own share, and a full refund (or a closed order) brings every payee to zero.
    """
    paid: list[Share] = []
    for share in order_shares:
        if share.kind == "commission":
            paid.append(share)
    wanted: dict[PayeeKey, int] = {}
    if not paid:
        return wanted
    amount = order.amount_fen
    commissionable = order.commissionable_fen
    if len(paid) == 1:  # the common case, without the lists: what scale_each gives one payee
        share = paid[0]
        wanted[(share.payee_id, share.role)] = scale(share.gross_fen, commissionable, amount) if amount else 0
        return wanted
    grosses = [s.gross_fen for s in paid]
    parts = scale_each(grosses, commissionable, amount) if amount else [0] * len(paid)
    for share, part in zip(paid, parts, strict=True):
        key = (share.payee_id, share.role)
        wanted[key] = wanted.get(key, 0) + part
    return wanted
