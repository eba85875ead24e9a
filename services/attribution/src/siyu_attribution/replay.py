"""Rebuild attributions and the ledger from an order history in bulk (recovery, plan back-tests, the benchmark).

The same book the handlers use, run over many orders at once: each order is attributed under its plan, and
settled if its holding period has passed. The output is rows, written by ``adapters.bulk`` with COPY. Nothing is
announced on Kafka: a rebuild re-derives the ledger, it does not pay anyone twice.

Two paths, one ledger. ``replay`` runs each order through a fused form of the book (``book.reattribute`` on an
order with no entries yet, then ``book.release``) over a plan compiled once per version (``PlanTables``): integer
weights instead of Fractions, rates and caps looked up once per role and category, period bounds remembered,
rows built as tuples with no intermediate objects. Orders it does not specialise (auditor overrides, the
``time_decay`` model) go through the book itself (``replay_order``). ``tests/unit/test_replay.py`` holds the
fused path to the book's rows, field for field, over generated orders, evidence and plans.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from siyu_attribution.domain import book
from siyu_attribution.domain.attribution import touch_payee
from siyu_attribution.domain.facts import Evidence, OrderFacts, TouchFact
from siyu_attribution.domain.ledger import EXPENSE, stable_id
from siyu_attribution.domain.money import split
from siyu_attribution.domain.periods import PostingPeriods
from siyu_attribution.domain.plans import PlanVersion
from siyu_shared.events.catalog.commissions import PayeeRole

Row = tuple[Any, ...]
_FUSED_MODELS = frozenset({"first_claim", "first_touch", "last_touch", "linear", "position_based"})


@dataclass(frozen=True, slots=True)
class OrderHistory:
    order: OrderFacts
    evidence: Evidence
    completed_at: datetime | None = None


@dataclass(slots=True)
class ReplayRows:
    """Rows per table, as tuples in ``adapters.bulk`` column order."""

    orders: list[Row] = field(default_factory=list)
    attributions: list[Row] = field(default_factory=list)
    shares: list[Row] = field(default_factory=list)
    entries: list[Row] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return len(self.orders) + len(self.attributions) + len(self.shares) + len(self.entries)


class PlanTables:
    """One plan version, compiled for the replay: what the book would look up or build for every order, once."""

    __slots__ = (
        "caps",
        "claim_window",
        "first_claim",
        "fused",
        "lookback",
        "paying_kinds",
        "plan",
        "position",
        "rates",
        "return_window",
        "touch_label",
        "touch_model",
    )

    def __init__(self, plan: PlanVersion) -> None:
        body = plan.body
        self.plan = plan
        self.lookback = body.lookback
        self.claim_window = timedelta(days=body.claim_window_days)
        self.return_window = timedelta(days=body.return_window_days)
        self.first_claim = body.model == "first_claim"
        self.touch_model: str = body.fallback_model if self.first_claim else body.model
        self.touch_label = self.touch_model if body.model == self.touch_model else f"{body.model}>{self.touch_model}"
        self.fused = self.touch_model in _FUSED_MODELS
        self.paying_kinds = frozenset(kind for kind in body.touch_kinds if kind != "group")
        self.position = body.position_weights
        # The replay prices with no month-to-date figures (as the book does when given none): gmv 0, nothing paid.
        self.rates: dict[tuple[str, str | None], int] = {}
        self.caps: dict[str, tuple[int | None, int | None]] = {}

    def rate(self, role: str, category: str | None) -> int:
        key = (role, category)
        rate = self.rates.get(key)
        if rate is None:
            rate = self.rates[key] = self.plan.body.terms(role).rate_bps(category, 0)  # type: ignore[arg-type]
        return rate

    def cap(self, role: str) -> tuple[int | None, int | None]:
        caps = self.caps.get(role)
        if caps is None:
            terms = self.plan.body.terms(role)  # type: ignore[arg-type]
            caps = self.caps[role] = (terms.cap_per_order_fen, terms.cap_per_month_fen)
        return caps


_compiled: dict[int, PlanTables] = {}


def plan_tables(plan: PlanVersion) -> PlanTables:
    """The compiled tables of ``plan`` (kept per plan object: plan versions are immutable)."""
    tables = _compiled.get(id(plan))
    if tables is None or tables.plan is not plan:
        if len(_compiled) > 64:
            _compiled.clear()
        tables = _compiled[id(plan)] = PlanTables(plan)
    return tables


def replay(
    *, tenant: str, histories: Iterable[OrderHistory], plan: PlanVersion, now: datetime, last_closed: str | None
) -> ReplayRows:
    rows = ReplayRows()
    tables = plan_tables(plan)
    periods = PostingPeriods(last_closed=last_closed)
    # The rows are tuples of strings, numbers and datetimes: no reference cycles for the cycle collector to find,
    # only ever longer lists for it to rescan (a fifth of the replay's time). Paused for the batch, then restored.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for history in histories:
            if tables.fused and not history.evidence.overrides:
                _replay_fused(tenant, history, tables, now, periods, rows)
            else:
                replay_order(tenant, history, plan, now, last_closed, rows)
    finally:
        if collecting:
            gc.enable()
    return rows


def replay_order(
    tenant: str, history: OrderHistory, plan: PlanVersion, now: datetime, last_closed: str | None, rows: ReplayRows
) -> None:
    """One order through the book itself (``reattribute`` at payment, ``release`` once past its holding period)."""
    order = history.order
    outcome = book.reattribute(
        tenant=tenant,
        order=order,
        evidence=history.evidence,
        plan=plan,
        existing=(),
        current=None,
        settled=False,
        cause="paid",
        at=order.paid_at,
        last_closed=last_closed,
    )
    record = outcome.attribution
    entries = outcome.entries
    window = timedelta(days=plan.body.return_window_days)
    due = history.completed_at + window if history.completed_at is not None else None
    settled_at = None
    if record is not None and due is not None and due <= now:
        entries = [
            *entries,
            *book.release(
                tenant=tenant, order=order, current=record, existing=entries, at=due, last_closed=last_closed
            ),
        ]
        settled_at = due
    rows.orders.append(
        (
            tenant,
            order.order_id,
            order.order_no,
            order.person_id,
            order.channel,
            order.amount_fen,
            order.refunded_fen,
            "[]",
            order.paid_at,
            history.completed_at,
            plan.plan_id,
            plan.version,
            record.attribution_id if record else None,
            due,
            settled_at,
        )
    )
    if record is None:
        return
    rows.attributions.append(
        (
            tenant,
            record.attribution_id,
            order.order_id,
            record.model,
            record.plan_id,
            record.plan_version,
            record.cause,
            record.decided_at,
        )
    )
    rows.shares += [
        (tenant, order.order_id, record.attribution_id, i, s.payee_id, s.role, s.kind, s.basis, s.base_fen, s.gross_fen)
        for i, s in enumerate(record.shares)
    ]
    rows.entries += [
        (
            tenant,
            e.entry_id,
            e.txn_id,
            e.kind,
            e.account,
            e.amount_fen,
            e.order_id,
            e.payee_id,
            e.payee_role,
            e.rule,
            e.plan_id,
            e.plan_version,
            e.attribution_id,
            e.posted_at,
            e.period,
        )
        for e in entries
    ]


def _touch_order(touch: TouchFact) -> tuple[datetime, str]:
    return touch.occurred_at, touch.touch_id


def _replay_fused(
    tenant: str, history: OrderHistory, tables: PlanTables, now: datetime, periods: PostingPeriods, rows: ReplayRows
) -> None:
    """``replay_order`` for one order without overrides under a fused model, written straight into rows."""
    order = history.order
    evidence = history.evidence
    order_id = order.order_id
    order_no = order.order_no
    paid_at = order.paid_at

    # -- attribute (attribution.attribute) ----------------------------------------------------------------------
    since = paid_at - tables.lookback
    window = [t for t in evidence.touches if since <= t.occurred_at <= paid_at]
    if len(window) > 1:
        window.sort(key=_touch_order)
    claims = evidence.claims
    claim = None
    if tables.first_claim and claims:
        deadline = paid_at + tables.claim_window
        best: tuple[datetime, int, str] | None = None
        for c in claims:
            if c.order_no == order_no and c.role == "staff_1v1" and c.claimed_at <= deadline:
                rank = (c.claimed_at, c.seq, c.claim_id)
                if best is None or rank < best:
                    best, claim = rank, c
    # Seller credits: (payee, role, integer weight, basis), the weights over ``denominator``.
    seller: list[tuple[str, PayeeRole, int, str]]
    if claim is not None:
        model = "first_claim"
        seller = [(claim.staff_id, "staff_1v1", 1, f"claim:{claim.claim_id}")]
        denominator = 1
    else:
        model = tables.touch_label
        paying = tables.paying_kinds
        seller, denominator = _touch_credits(tables, [t for t in window if t.kind in paying])
    activity: dict[str, str] = {}
    for touch in window:
        if touch.kind == "group" and touch.staff_id and touch.staff_id not in activity:
            activity[touch.staff_id] = f"touch:{touch.touch_id}"
    if claims:
        for c in sorted(claims, key=lambda c: (c.claimed_at, c.seq, c.claim_id)):
            if c.order_no == order_no and c.role == "group_activator" and c.staff_id not in activity:
                activity[c.staff_id] = f"claim:{c.claim_id}"
    source = None
    if evidence.sources:
        before = [s for s in evidence.sources if s.occurred_at <= paid_at]
        if before:
            source = min(before, key=lambda s: (s.occurred_at, s.lead_id))

    # -- price (commission.shares) ------------------------------------------------------------------------------
    amount = order.amount_fen
    priced: list[tuple[int, str | None]] = [(line.amount_fen, line.category) for line in order.lines]
    lines_fen = 0
    for line_fen, _ in priced:
        lines_fen += line_fen
    if not priced or lines_fen != amount:  # the lines don't add up: one line for the whole amount
        priced = [(amount, None)]
    rates = tables.rates
    shares: list[tuple[str, PayeeRole, str, str, int, int]] = []  # payee, role, kind, basis, base, gross
    if seller:
        weights = [w for _, _, w, _ in seller]
        claimed = sum(weights)
        if claimed < denominator:  # less than the whole order: the rest stays with the brand
            weights.append(denominator - claimed)
        n = len(seller)
        bases = [0] * n
        grosses = [0] * n
        for line_fen, category in priced:
            parts = [line_fen] if len(weights) == 1 else split(line_fen, weights)
            for i in range(n):
                bases[i] += parts[i]
                rate = rates.get((seller[i][1], category))
                if rate is None:
                    rate = tables.rate(seller[i][1], category)
                grosses[i] += parts[i] * rate // 10_000
        for (payee, role, _, basis), base, gross in zip(seller, bases, grosses, strict=True):
            shares.append((payee, role, "commission", basis, base, _capped(tables, role, gross)))
    if source is not None:
        role = source.account_kind
        gross = sum(line_fen * tables.rate(role, category) // 10_000 for line_fen, category in priced)
        base = sum(line_fen for line_fen, _ in priced)
        shares.append(
            (source.partner_id, role, "commission", f"source:{source.lead_id}", base, _capped(tables, role, gross))
        )
    paid_shares = len(shares)
    shares += [(staff, "group_activator", "activity", basis, 0, 0) for staff, basis in activity.items()]

    # -- what the order owes (commission.targets) and the postings (ledger.reconcile, ledger.settle) --------------
    gross_total = sum(s[5] for s in shares[:paid_shares])
    if order.closed_at is not None and order.completed_at is None:
        commissionable = 0
    else:
        commissionable = max(0, amount - order.refunded_fen)
    total = gross_total * commissionable // amount if amount else 0
    wanted: dict[tuple[str, PayeeRole], int] = {}
    rules: dict[tuple[str, PayeeRole], str] = {}
    if gross_total:
        parts = [total] if paid_shares == 1 else split(total, [s[5] for s in shares[:paid_shares]])
        for s, part in zip(shares[:paid_shares], parts, strict=True):
            key = (s[0], s[1])
            wanted[key] = wanted.get(key, 0) + part
            rules[key] = f"{model}/{s[3]}"
    else:
        for s in shares[:paid_shares]:
            key = (s[0], s[1])
            wanted[key] = 0
            rules[key] = f"{model}/{s[3]}"

    plan = tables.plan
    plan_id, version = plan.plan_id, plan.version
    attribution_id = stable_id(tenant, order_id, "attribution", "paid")
    posting = (plan_id, version, attribution_id, paid_at, periods(paid_at))  # the tail of every entry row
    entries = rows.entries
    held: list[tuple[tuple[str, PayeeRole], int]] = []
    for key in sorted(wanted):
        diff = wanted[key]
        if diff == 0:
            continue
        payee_id, role = key
        account = f"held:{payee_id}"
        rule = f"paid; {rules[key]}"
        if diff > 0:
            kind, debit, credit, value = "accrual", EXPENSE, account, diff
        else:
            kind, debit, credit, value = "reversal", account, EXPENSE, -diff
        txn = stable_id(tenant, order_id, "paid", kind, payee_id, role)
        entries.append((tenant, f"{txn}:d", txn, kind, debit, value, order_id, payee_id, role, rule, *posting))
        entries.append((tenant, f"{txn}:c", txn, kind, credit, -value, order_id, payee_id, role, rule, *posting))
        held.append((key, diff))

    completed_at = history.completed_at
    due = completed_at + tables.return_window if completed_at is not None else None
    settled_at = None
    if due is not None and due <= now:
        settled_at = due
        settlement = ("holding_period_over", plan_id, version, attribution_id, due, periods(due))
        for (payee_id, role), value in held:  # sorted by payee already
            if value > 0:
                debit, credit = f"held:{payee_id}", f"payable:{payee_id}"
            else:
                debit, credit, value = f"payable:{payee_id}", f"held:{payee_id}", -value
            txn = stable_id(tenant, order_id, "settlement", "settlement", payee_id, role)
            entries.append((tenant, f"{txn}:d", txn, "settlement", debit, value, order_id, payee_id, role, *settlement))
            entries.append(
                (tenant, f"{txn}:c", txn, "settlement", credit, -value, order_id, payee_id, role, *settlement)
            )

    rows.orders.append(
        (
            tenant,
            order_id,
            order_no,
            order.person_id,
            order.channel,
            amount,
            order.refunded_fen,
            "[]",
            paid_at,
            completed_at,
            plan_id,
            version,
            attribution_id,
            due,
            settled_at,
        )
    )
    rows.attributions.append((tenant, attribution_id, order_id, model, plan_id, version, "paid", paid_at))
    rows.shares += [(tenant, order_id, attribution_id, i, *s) for i, s in enumerate(shares)]


def _touch_credits(tables: PlanTables, touches: list[TouchFact]) -> tuple[list[tuple[str, PayeeRole, int, str]], int]:
    """``attribution.touch_credits`` with integer weights over a common denominator (same proportions)."""
    n = len(touches)
    if n == 0:
        return [], 1
    model = tables.touch_model
    weights: list[int]
    if model in ("last_touch", "first_claim"):
        touch = touches[-1]
        payee = touch_payee(touch)
        return ([(*payee, 1, f"{model}:touch:{touch.touch_id}")] if payee else []), 1
    if model == "first_touch":
        touch = touches[0]
        payee = touch_payee(touch)
        return ([(*payee, 1, f"{model}:touch:{touch.touch_id}")] if payee else []), 1
    if model == "linear":
        weights, denominator = [1] * n, n
    else:  # position_based
        first, middle, last = tables.position
        if n == 1:
            weights, denominator = [1], 1
        elif n == 2:
            weights, denominator = [first, last], (first + last) or 1
        else:
            weights = [first * (n - 2), *([middle] * (n - 2)), last * (n - 2)]
            denominator = (first + middle + last) * (n - 2)
    summed: dict[tuple[str, PayeeRole], int] = {}
    bases: dict[tuple[str, PayeeRole], str] = {}
    for touch, weight in zip(touches, weights, strict=True):
        payee = touch_payee(touch)
        if payee is None or not weight:
            continue  # the brand's own automation: that share earns no one a commission
        if payee in summed:
            summed[payee] += weight
        else:
            summed[payee] = weight
            bases[payee] = f"{model}:touch:{touch.touch_id}"
    return [(p, r, w, bases[(p, r)]) for (p, r), w in summed.items()], denominator


def _capped(tables: PlanTables, role: str, gross: int) -> int:
    per_order, per_month = tables.cap(role)
    if per_order is not None:
        gross = min(gross, per_order)
    if per_month is not None:
        gross = max(0, min(gross, per_month))
    return gross
