"""The order lifecycle, robust to deliveries that arrive out of order or twice.

Platforms do not promise order: a refund can arrive before the payment it refunds. Changes that need a paid
order (completed, refunded, closed) are held until the payment is known and then released in lifecycle order,
so consumers always see paid → refunded/completed → closed, each exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from siyu_ingest.domain.models import OrderChange

_RANK = {"paid": 0, "refunded": 1, "completed": 2, "closed": 3}


@dataclass(frozen=True, slots=True)
class OrderState:
    order_id: str
    paid: bool = False
    amount_fen: int = 0
    refunded_fen: int = 0
    refund_ids: tuple[str, ...] = ()
    completed: bool = False
    closed: bool = False
    held: tuple[OrderChange, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Emission:
    """An order event to publish: the change, and for refunds whether the order is now fully refunded."""

    change: OrderChange
    full_refund: bool = False
    refund_fen: int = 0


def apply(state: OrderState, change: OrderChange) -> tuple[OrderState, list[Emission]]:
    """The order after ``change`` and the events it implies (none for a duplicate or an unpaid order's step)."""
    if change.kind != "paid" and not state.paid:
        if _already_held(state, change):
            return state, []
        return replace(state, held=(*state.held, change)), []
    if change.kind == "paid":
        if state.paid:
            return state, []
        state = replace(state, paid=True, amount_fen=change.amount_fen)
        emissions = [Emission(change)]
        held = sorted(state.held, key=lambda c: (_RANK[c.kind], c.occurred_at))
        state = replace(state, held=())
        for waiting in held:
            state, more = apply(state, waiting)
            emissions += more
        return state, emissions
    if change.kind == "refunded":
        refund_id = change.refund_id or change.order_no
        if refund_id in state.refund_ids:
            return state, []
        remaining = max(0, state.amount_fen - state.refunded_fen)
        amount = min(change.amount_fen, remaining) if state.amount_fen else change.amount_fen
        refunded = state.refunded_fen + amount
        full = state.amount_fen > 0 and refunded >= state.amount_fen
        state = replace(state, refunded_fen=refunded, refund_ids=(*state.refund_ids, refund_id))
        return state, [Emission(change, full_refund=full, refund_fen=amount)]
    if change.kind == "completed":
        if state.completed:
            return state, []
        return replace(state, completed=True), [Emission(change)]
    if state.closed:
        return state, []
    return replace(state, closed=True), [Emission(change)]


def _already_held(state: OrderState, change: OrderChange) -> bool:
    return any(h.kind == change.kind and h.refund_id == change.refund_id for h in state.held)
