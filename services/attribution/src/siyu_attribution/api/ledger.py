"""The ledger and statements, and closing a period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict

from siyu_attribution import accounting
from siyu_attribution.accounting import Books, PeriodNotClosable
from siyu_attribution.adapters import books
from siyu_shared.http.deps import Admin, DbSession, Reader, error
from siyu_shared.values import Period, Text

PeriodPath = Annotated[Period, Path(examples=["2026-10"])]
PeriodFilter = Annotated[Period | None, Query(examples=["2026-10"])]
PayeeFilter = Annotated[Text | None, Query(min_length=1, max_length=128, examples=["xwz_01"])]
OrderFilter = Annotated[Text | None, Query(min_length=1, max_length=128, examples=["tmall:2087654321"])]


CLAIM = "claim:5b0e2f1c9a7d4c3e8b6a1f2d3c4e5f60"
"""The cause of the example entries: a staff member's claim of the order."""


class EntryOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "entry_id": "7a1b2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d:c",
                    "txn_id": "7a1b2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d",
                    "kind": "accrual",
                    "account": "held:xwz_01",
                    "amount_fen": -1500,
                    "order_id": "tmall:2087654321",
                    "payee_id": "xwz_01",
                    "payee_role": "staff_1v1",
                    "rule": f"{CLAIM}; first_claim/{CLAIM}",
                    "plan_id": "standard",
                    "plan_version": 3,
                    "attribution_id": "3d6f1a2b-8c4e-5f7a-9b1c-2d3e4f5a6b7c",
                    "posted_at": "2026-11-22T08:20:00Z",
                    "period": "2026-11",
                }
            ]
        }
    )

    entry_id: str
    txn_id: str
    kind: str
    account: str
    amount_fen: int
    order_id: str
    payee_id: str
    payee_role: str
    rule: str
    plan_id: str
    plan_version: int
    attribution_id: str
    posted_at: datetime
    period: str


STATEMENT_EXAMPLE: dict[str, Any] = {
    "statement_id": "c2d4e6f8-1a3b-5c5d-9e7f-0a1b2c3d4e5f",
    "payee_id": "xwz_01",
    "period": "2026-10",
    "total_fen": 20970,
    "entry_count": 16,
    "closed_at": "2026-11-08T00:00:00Z",
}


class StatementOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [STATEMENT_EXAMPLE]})

    statement_id: str
    payee_id: str
    period: str
    total_fen: int
    entry_count: int
    closed_at: datetime


class CloseOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"period": "2026-10", "statements": [STATEMENT_EXAMPLE]}]}
    )

    period: str
    statements: list[StatementOut]


def router(books_: Books, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["ledger"])

    @api.get("/ledger")
    async def get_ledger(
        principal: Reader,
        session: DbSession,
        payee_id: PayeeFilter = None,
        period: PeriodFilter = None,
        order_id: OrderFilter = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[EntryOut]:
        """Ledger entries (debits positive, credits negative), oldest first."""
        rows = await books.entries(
            session, tenant=principal.tenant, payee_id=payee_id, period=period, order_id=order_id, limit=limit
        )
        return [EntryOut.model_validate(e, from_attributes=True) for e in rows]

    @api.get("/statements")
    async def get_statements(
        principal: Reader,
        session: DbSession,
        period: PeriodFilter = None,
        payee_id: PayeeFilter = None,
    ) -> list[StatementOut]:
        rows = await books.list_statements(session, tenant=principal.tenant, period=period, payee_id=payee_id)
        return [StatementOut.model_validate(r) for r in rows]

    @api.post("/periods/{period}/close", responses={409: error("the period is still running, or already closed")})
    async def close(period: PeriodPath, principal: Admin, session: DbSession) -> CloseOut:
        """Close the period (and any earlier open one) into immutable statements, one per payee."""
        now = clock()
        try:
            lines = await accounting.close_period(session, books_, tenant=principal.tenant, period=period, now=now)
        except PeriodNotClosable as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
        return CloseOut(
            period=period,
            statements=[
                StatementOut(
                    statement_id=s.statement_id,
                    payee_id=s.payee_id,
                    period=s.period,
                    total_fen=s.total_fen,
                    entry_count=s.entry_count,
                    closed_at=now,
                )
                for s in lines
            ],
        )

    return api
