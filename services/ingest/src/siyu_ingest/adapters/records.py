"""Leads and orders as ingest keeps them (orders hold the lifecycle state that survives out-of-order delivery)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_ingest.adapters.tables import orders
from siyu_ingest.domain.models import Identifier, OrderChange, OrderLineFact
from siyu_ingest.domain.orders import OrderState
from siyu_shared.events.catalog.common import SourceRef


async def load_order(session: AsyncSession, *, tenant: str, order_id: str) -> tuple[OrderState, str | None]:
    row = (
        await session.execute(
            select(orders).where(orders.c.tenant == tenant, orders.c.order_id == order_id).with_for_update()
        )
    ).first()
    if row is None:
        return OrderState(order_id=order_id), None
    state = OrderState(
        order_id=order_id,
        paid=row.paid,
        amount_fen=row.amount_fen,
        refunded_fen=row.refunded_fen,
        refund_ids=tuple(row.refund_ids),
        completed=row.completed,
        closed=row.closed,
        held=tuple(change_from_json(c) for c in row.held),
    )
    return state, row.person_id


async def save_order(
    session: AsyncSession, *, tenant: str, change: OrderChange, state: OrderState, person_id: str | None
) -> None:
    values: dict[str, Any] = {
        "person_id": person_id,
        "paid": state.paid,
        "amount_fen": state.amount_fen,
        "refunded_fen": state.refunded_fen,
        "refund_ids": list(state.refund_ids),
        "completed": state.completed,
        "closed": state.closed,
        "held": [change_to_json(c) for c in state.held],
        "updated_at": func.now(),
    }
    stmt = pg_insert(orders).values(
        tenant=tenant, order_id=state.order_id, channel=change.channel, order_no=change.order_no, **values
    )
    await session.execute(stmt.on_conflict_do_update(index_elements=["tenant", "order_id"], set_=values))


def change_to_json(change: OrderChange) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "channel": change.channel,
        "order_no": change.order_no,
        "occurred_at": change.occurred_at.isoformat(),
        "identifiers": [[i.kind, i.value] for i in change.identifiers],
        "amount_fen": change.amount_fen,
        "lines": [[ln.line_id, ln.amount_fen, ln.quantity, ln.sku] for ln in change.lines],
        "shop_id": change.shop_id,
        "refund_id": change.refund_id,
        "line_id": change.line_id,
        "reason": change.reason,
        "source": change.source.model_dump(mode="json") if change.source else None,
    }


def change_from_json(data: dict[str, Any]) -> OrderChange:
    return OrderChange(
        kind=data["kind"],
        channel=data["channel"],
        order_no=data["order_no"],
        occurred_at=datetime.fromisoformat(data["occurred_at"]),
        identifiers=tuple(Identifier(kind, value) for kind, value in data["identifiers"]),
        amount_fen=data["amount_fen"],
        lines=tuple(OrderLineFact(line_id=a, amount_fen=b, quantity=c, sku=d) for a, b, c, d in data["lines"]),
        shop_id=data["shop_id"],
        refund_id=data["refund_id"],
        line_id=data["line_id"],
        reason=data["reason"],
        source=SourceRef.model_validate(data["source"]) if data["source"] else None,
    )
