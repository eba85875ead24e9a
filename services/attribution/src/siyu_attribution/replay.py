"""Rebuild attributions and the ledger from an order history in bulk (recovery, plan back-tests, the benchmark).

The same book the handlers use, run over many orders at once: each order is attributed under its plan, and
settled if its holding period has passed. The output is rows, written by ``adapters.bulk`` with COPY. Nothing is
announced on Kafka: a rebuild re-derives the ledger, it does not pay anyone twice.

One path, one ledger: ``replay_order`` asks the book what the handlers would (``book.reattribute`` at payment on
an order with no entries yet, ``book.release`` once past its holding period) and keeps its answers as rows: ledger
entries and shares are tuples in their tables' column order already.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from siyu_attribution.domain import book
from siyu_attribution.domain.facts import Evidence, OrderFacts
from siyu_attribution.domain.plans import PlanVersion

Row = tuple[Any, ...]


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


def replay(
    *, tenant: str, histories: Iterable[OrderHistory], plan: PlanVersion, now: datetime, last_closed: str | None
) -> ReplayRows:
    rows = ReplayRows()
    # The rows are tuples of strings, numbers and datetimes: no reference cycles for the cycle collector to find,
    # only ever longer lists for it to rescan (a fifth of the replay's time). Paused for the batch, then restored.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for history in histories:
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
    completed_at = history.completed_at
    due = completed_at + timedelta(days=plan.body.return_window_days) if completed_at is not None else None
    settled_at = None
    if record is not None and due is not None and due <= now:
        entries += book.release(
            tenant=tenant, order=order, current=record, existing=entries, at=due, last_closed=last_closed
        )
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
            completed_at,
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
    order_id, attribution_id = order.order_id, record.attribution_id
    rows.shares += [(tenant, order_id, attribution_id, i, *share) for i, share in enumerate(record.shares)]
    # Entries are tuples in the table's column order already; kept as plain tuples, which the cycle collector stops
    # tracking on its first pass (it never untracks a tuple subclass, and would rescan every row until the COPY).
    rows.entries += map(tuple, entries)
