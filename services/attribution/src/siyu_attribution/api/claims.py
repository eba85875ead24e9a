"""Claims of order numbers (seed 004 §14), auditor overrides, and the attribution of an order."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from siyu_attribution import accounting
from siyu_attribution.accounting import Books
from siyu_attribution.adapters import books, projections
from siyu_attribution.domain.facts import ClaimFact, OverrideFact
from siyu_shared.events.catalog.commissions import PayeeRole
from siyu_shared.http.deps import Admin, DbSession, Reader, Writer
from siyu_shared.values import Text

OrderNo = Annotated[Text, Path(min_length=1, max_length=128, examples=["2087654321"])]
"""An order number as the path names it (``orders.order_no`` is a varchar(128))."""
OrderId = Annotated[Text, Path(min_length=1, max_length=128, examples=["tmall:2087654321"])]

ATTRIBUTION_EXAMPLE: dict[str, Any] = {
    "attribution_id": "3d6f1a2b-8c4e-5f7a-9b1c-2d3e4f5a6b7c",
    "model": "first_claim",
    "plan_id": "standard",
    "plan_version": 3,
    "cause": "claim:5b0e2f1c9a7d4c3e8b6a1f2d3c4e5f60",
    "decided_at": "2026-11-22T08:20:00Z",
    "shares": [
        {
            "payee_id": "xwz_01",
            "role": "staff_1v1",
            "kind": "commission",
            "basis": "claim:5b0e2f1c9a7d4c3e8b6a1f2d3c4e5f60",
            "base_fen": 30000,
            "gross_fen": 1500,
        },
        {
            "payee_id": "xhs-kol-9",
            "role": "kol",
            "kind": "commission",
            "basis": "source:xiaohongshu:L-1001",
            "base_fen": 30000,
            "gross_fen": 3000,
        },
    ],
}


class ClaimIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"order_no": "2087654321", "staff_id": "wecom:zhangsan", "role": "staff_1v1"}]},
    )

    order_no: Text = Field(min_length=1, max_length=128, description="The platform's order number (Tmall `tid`).")
    staff_id: Text = Field(min_length=1, max_length=128)
    role: Literal["staff_1v1", "group_activator"] = "staff_1v1"
    via: Literal["1v1", "group"] = "1v1"
    note: Text | None = Field(default=None, max_length=500)


class ClaimOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "claim_id": "5b0e2f1c9a7d4c3e8b6a1f2d3c4e5f60",
                    "order_no": "2087654321",
                    "staff_id": "xwz_01",
                    "role": "staff_1v1",
                    "claimed_at": "2026-11-22T08:20:00Z",
                    "order_known": True,
                    "reattributed": True,
                }
            ]
        }
    )

    claim_id: str
    order_no: str
    staff_id: str
    role: str
    claimed_at: datetime
    order_known: bool = Field(description="Whether the order has been seen paid; a claim may arrive first.")
    reattributed: bool = Field(description="Whether this claim changed who earns the order.")


class OverrideIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"payee_id": "wecom:lisi", "payee_role": "staff_1v1", "reason": "chat log shows lisi got it"}]
        },
    )

    payee_id: Text = Field(min_length=1, max_length=128)
    payee_role: PayeeRole = "staff_1v1"
    reason: Text = Field(min_length=3, max_length=1000)


class ShareOut(BaseModel):
    payee_id: str
    role: str
    kind: str
    basis: str
    base_fen: int
    gross_fen: int


class AttributionOut(BaseModel):
    attribution_id: str
    model: str
    plan_id: str
    plan_version: int
    cause: str
    decided_at: datetime
    shares: list[ShareOut]


class OrderAttributionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order_id": "tmall:2087654321",
                    "order_no": "2087654321",
                    "amount_fen": 30000,
                    "refunded_fen": 0,
                    "settled": False,
                    "current": ATTRIBUTION_EXAMPLE,
                    "history": [ATTRIBUTION_EXAMPLE],
                    "claims": [
                        {
                            "claim_id": "5b0e2f1c9a7d4c3e8b6a1f2d3c4e5f60",
                            "seq": 41,
                            "order_no": "2087654321",
                            "staff_id": "xwz_01",
                            "role": "staff_1v1",
                            "via": "1v1",
                            "note": "paid after our chat",
                            "claimed_at": "2026-11-22T08:20:00Z",
                        }
                    ],
                    "overrides": [],
                }
            ]
        }
    )

    order_id: str
    order_no: str
    amount_fen: int
    refunded_fen: int
    settled: bool
    current: AttributionOut | None
    history: list[AttributionOut]
    claims: list[dict[str, object]]
    overrides: list[dict[str, object]]


def router(books_: Books, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["attribution"])

    @api.post("/claims", status_code=status.HTTP_201_CREATED)
    async def post_claim(body: ClaimIn, principal: Writer, session: DbSession) -> ClaimOut:
        """A staff member claims an order number; the first valid 1v1 claim earns the commission."""
        await projections.serialize_on(session, tenant=principal.tenant, subject=f"order_no:{body.order_no}")
        now = clock()
        claim = await projections.add_claim(
            session,
            tenant=principal.tenant,
            claim=ClaimFact(uuid.uuid4().hex, body.order_no, body.staff_id, body.role, now),
            via=body.via,
            note=body.note,
        )
        order_ids = await projections.order_ids_by_order_no(session, tenant=principal.tenant, order_no=body.order_no)
        changed = False
        for order_id in order_ids:
            changed |= await accounting.reattribute_order(
                session, books_, tenant=principal.tenant, order_id=order_id, cause=f"claim:{claim.claim_id}", at=now
            )
        return ClaimOut(
            claim_id=claim.claim_id,
            order_no=claim.order_no,
            staff_id=claim.staff_id,
            role=claim.role,
            claimed_at=now,
            order_known=bool(order_ids),
            reattributed=changed,
        )

    @api.post("/orders/{order_no}/overrides", status_code=status.HTTP_201_CREATED)
    async def post_override(
        order_no: OrderNo, body: OverrideIn, principal: Admin, session: DbSession
    ) -> OrderAttributionOut:
        """An auditor decides who earns the order, with a reason; every override is kept."""
        await projections.serialize_on(session, tenant=principal.tenant, subject=f"order_no:{order_no}")
        order_ids = await projections.order_ids_by_order_no(session, tenant=principal.tenant, order_no=order_no)
        if not order_ids:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such order")
        now = clock()
        decided = OverrideFact(uuid.uuid4().hex, order_no, body.payee_id, body.payee_role, body.reason, now)
        await projections.add_override(
            session, tenant=principal.tenant, decided=decided, auditor_key_id=principal.key_id
        )
        for order_id in order_ids:
            await accounting.reattribute_order(
                session,
                books_,
                tenant=principal.tenant,
                order_id=order_id,
                cause=f"override:{decided.override_id}",
                at=now,
            )
        return await _view(session, principal.tenant, order_ids[0])

    @api.get("/orders/{order_id}/attribution")
    async def get_attribution(order_id: OrderId, principal: Reader, session: DbSession) -> OrderAttributionOut:
        """Who earns the order now, every earlier decision, and the claims and overrides behind them."""
        return await _view(session, principal.tenant, order_id)

    return api


async def _view(session: DbSession, tenant: str, order_id: str) -> OrderAttributionOut:
    row = await projections.get_order(session, tenant=tenant, order_id=order_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such order")
    history = [
        AttributionOut(
            attribution_id=r.attribution_id,
            model=r.model,
            plan_id=r.plan_id,
            plan_version=r.plan_version,
            cause=r.cause,
            decided_at=r.decided_at,
            shares=[
                ShareOut(
                    payee_id=s.payee_id,
                    role=s.role,
                    kind=s.kind,
                    basis=s.basis,
                    base_fen=s.base_fen,
                    gross_fen=s.gross_fen,
                )
                for s in r.shares
            ],
        )
        for r in await books.attribution_history(session, tenant=tenant, order_id=order_id)
    ]
    current = next((h for h in history if h.attribution_id == row.attribution_id), None)
    return OrderAttributionOut(
        order_id=row.facts.order_id,
        order_no=row.facts.order_no,
        amount_fen=row.facts.amount_fen,
        refunded_fen=row.facts.refunded_fen,
        settled=row.settled,
        current=current,
        history=history,
        claims=await projections.list_claims(session, tenant=tenant, order_no=row.facts.order_no),
        overrides=await projections.list_overrides(session, tenant=tenant, order_no=row.facts.order_no),
    )
