"""Rebuild attributions and the ledger from an order history in bulk (recovery, plan back-tests, the benchmark).

The same pure book the handlers use, run over many orders at once: each order is attributed under its plan,
and settled if its holding period has passed. The output is rows, written by ``adapters.bulk`` with COPY.
Nothing is announced on Kafka: a rebuild re-derives the ledger, it does not pay anyone twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from siyu_attribution.domain import book
from siyu_attribution.domain.facts import Evidence, OrderFacts
from siyu_attribution.domain.plans import PlanVersion


@dataclass(frozen=True, slots=True)
class OrderHistory:
    order: OrderFacts
    evidence: Evidence
    completed_at: datetime | None = None


@dataclass(slots=True)
class ReplayRows:
    """Rows per table, as tuples in ``adapters.bulk`` column order."""

    orders: list[tuple[Any, ...]] = field(default_factory=list)
    attributions: list[tuple[Any, ...]] = field(default_factory=list)
    shares: list[tuple[Any, ...]] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return len(self.orders) + len(self.attributions) + len(self.shares) + len(self.entries)


def replay(
    *, tenant: str, histories: Iterable[OrderHistory], plan: PlanVersion, now: datetime, last_closed: str | None
) -> ReplayRows:
    rows = ReplayRows()
    window = timedelta(days=plan.body.return_window_days)
    for history in histories:
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
            continue
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
            (tenant, record.attribution_id, i, s.payee_id, s.role, s.kind, s.basis, s.base_fen, s.gross_fen)
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
    return rows
