"""The ledger decisions for one order, from its facts and its entries so far (pure: the caller loads and saves).

- ``reattribute``: decide who earns the order (at payment, and again when a late touch, claim or override
  arrives) and post the difference;
- ``rescale``: after a refund or a close, bring what the order owes each payee down proportionally;
- ``release``: the holding period is over, move held commission to payable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from siyu_attribution.domain import ledger
from siyu_attribution.domain.attribution import attribute
from siyu_attribution.domain.commission import PayeeKey, Share, shares, targets
from siyu_attribution.domain.facts import Evidence, OrderFacts
from siyu_attribution.domain.ledger import Entry, Posting
from siyu_attribution.domain.periods import posting_period
from siyu_attribution.domain.plans import PlanVersion

_new = tuple.__new__  # a NamedTuple's own constructor is a Python-level __new__: several times the tuple's cost


class AttributionRecord(NamedTuple):
    """One decision on an order; a re-attribution appends a new record, the latest is current."""

    attribution_id: str
    order_id: str
    model: str
    plan_id: str
    plan_version: int
    shares: tuple[Share, ...]
    cause: str
    decided_at: datetime


class Outcome(NamedTuple):
    attribution: AttributionRecord | None
    entries: list[Entry]


def reattribute(
    *,
    tenant: str,
    order: OrderFacts,
    evidence: Evidence,
    plan: PlanVersion,
    existing: Sequence[Entry],
    current: AttributionRecord | None,
    settled: bool,
    cause: str,
    at: datetime,
    last_closed: str | None,
    month_gmv: Mapping[str, int] | None = None,
    month_commission: Mapping[str, int] | None = None,
) -> Outcome:
    """Attribute the order under ``plan`` with all evidence known now; post only what changed.

    No new record when the decision is the same as the current one (a late touch that changes nothing).
    """
    decision = attribute(order, evidence, plan.body)
    money = shares(order, decision, plan.body, month_gmv=month_gmv, month_commission=month_commission)
    if current is not None and current.shares == money and current.model == decision.model:
        return Outcome(None, [])
    order_id = order.order_id
    attribution_id = ledger.stable_id(tenant, order_id, "attribution", cause)
    record = _new(
        AttributionRecord, (attribution_id, order_id, decision.model, plan.plan_id, plan.version, money, cause, at)
    )
    return _new(Outcome, (record, _post(tenant, order, record, existing, settled, cause, at, last_closed)))


def rescale(
    *,
    tenant: str,
    order: OrderFacts,
    current: AttributionRecord,
    existing: Sequence[Entry],
    settled: bool,
    cause: str,
    at: datetime,
    last_closed: str | None,
) -> Outcome:
    """After a refund or a close: proportional reversals under the current attribution."""
    return Outcome(None, _post(tenant, order, current, existing, settled, cause, at, last_closed))


def release(
    *,
    tenant: str,
    order: OrderFacts,
    current: AttributionRecord,
    existing: Sequence[Entry],
    at: datetime,
    last_closed: str | None,
) -> list[Entry]:
    return ledger.settle(_posting(tenant, order, current, "settlement", at, last_closed), existing=existing)


def _posting(
    tenant: str, order: OrderFacts, record: AttributionRecord, cause: str, at: datetime, last_closed: str | None
) -> Posting:
    """What the entries of one posting share: the order, the attribution and plan behind it, when and in which
    period."""
    period = posting_period(at, last_closed=last_closed)
    args = (tenant, order.order_id, cause, record.plan_id, record.plan_version, record.attribution_id, at, period)
    return _new(Posting, args)


def _post(
    tenant: str,
    order: OrderFacts,
    record: AttributionRecord,
    existing: Sequence[Entry],
    settled: bool,
    cause: str,
    at: datetime,
    last_closed: str | None,
) -> list[Entry]:
    posting = _posting(tenant, order, record, cause, at, last_closed)
    model = record.model
    rules: dict[PayeeKey, str] = {}
    for share in record.shares:
        if share.kind == "commission":
            rules[(share.payee_id, share.role)] = f"{model}/{share.basis}"
    return ledger.reconcile(
        posting, existing=existing, wanted=targets(order, record.shares), settled=settled, rules=rules
    )
