"""The ledger and statements, and closing a period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel

from siyu_attribution import accounting
from siyu_attribution.accounting import Books, PeriodNotClosable
from siyu_attribution.adapters import books
from siyu_shared.http.deps import Admin, DbSession, Reader

PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"
PeriodPath = Annotated[str, Path(pattern=PERIOD, examples=["2026-10"])]


class EntryOut(BaseModel):
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


class StatementOut(BaseModel):
    statement_id: str
    payee_id: str
    period: str
    total_fen: int
    entry_count: int
    closed_at: datetime


class CloseOut(BaseModel):
    period: str
    statements: list[StatementOut]


def router(books_: Books, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["ledger"])

    @api.get("/ledger")
    async def get_ledger(
        principal: Reader,
        session: DbSession,
        payee_id: str | None = None,
        period: Annotated[str | None, Query(pattern=PERIOD)] = None,
        order_id: str | None = None,
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
        period: Annotated[str | None, Query(pattern=PERIOD)] = None,
        payee_id: str | None = None,
    ) -> list[StatementOut]:
        rows = await books.list_statements(session, tenant=principal.tenant, period=period, payee_id=payee_id)
        return [StatementOut.model_validate(r) for r in rows]

    @api.post("/periods/{period}/close")
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
