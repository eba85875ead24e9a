"""A person's order and touch aggregates, derived from their fact rows (no I/O): the one home of these rules.

Written to the profile by the batch handler (and for a merge's survivor), read by rules as plain facts. Over the
orders that were not fully refunded or closed (``voided``), except the money totals, which count every order:
``paid_fen`` and ``refunded_fen`` are sums over all orders, ``net_fen`` their difference. Touches count when sent.
Numbers that are not whole (``avg_order_fen``, ``mean_interval_days``) are decimals rounded to ``DIGITS`` significant
digits: the value stored is the value the rules decide on.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Context, Decimal
from typing import Any

from siyu_segmentation.domain.facts import OrderFact, TouchFact

DIGITS = 28
_CONTEXT = Context(prec=DIGITS)

ORDER_COLUMNS: tuple[str, ...] = (
    "order_count",
    "paid_fen",
    "refunded_fen",
    "net_fen",
    "first_order_at",
    "last_order_at",
    "avg_order_fen",
    "mean_interval_days",
    "categories",
)
TOUCH_COLUMNS: tuple[str, ...] = ("touches_received", "last_touch_at")


def order_aggregates(orders: Iterable[OrderFact]) -> dict[str, Any]:
    """The profile's order columns (``ORDER_COLUMNS``) from all of the person's order rows."""
    paid = refunded = 0
    live: list[OrderFact] = []
    for o in orders:
        paid += o.amount_fen
        refunded += o.refunded_fen
        if not o.voided:
            live.append(o)
    count = len(live)
    first = min((o.paid_at for o in live), default=None)
    last = max((o.paid_at for o in live), default=None)
    interval: Decimal | None = None
    if count > 1 and first is not None and last is not None:
        seconds = _seconds(last, first)
        interval = _CONTEXT.divide(_CONTEXT.divide(seconds, Decimal(86400)), Decimal(count - 1))
    return {
        "order_count": count,
        "paid_fen": paid,
        "refunded_fen": refunded,
        "net_fen": paid - refunded,
        "first_order_at": first,
        "last_order_at": last,
        "avg_order_fen": _CONTEXT.divide(Decimal(sum(o.amount_fen for o in live)), Decimal(count)) if live else None,
        "mean_interval_days": interval,
        "categories": sorted({c for o in live for c in o.categories}),
    }


def touch_aggregates(touches: Iterable[TouchFact]) -> dict[str, Any]:
    """The profile's touch columns (``TOUCH_COLUMNS``) from all of the person's touch rows."""
    sent = [t.occurred_at for t in touches if t.status == "sent"]
    return {"touches_received": len(sent), "last_touch_at": max(sent, default=None)}


def _seconds(later: datetime, earlier: datetime) -> Decimal:
    delta = later - earlier
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / Decimal(1_000_000)
