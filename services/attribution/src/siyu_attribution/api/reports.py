"""Operators' reports (JSON, or CSV with `?format=csv`) for one period of the caller's tenant."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from siyu_attribution.adapters import reports
from siyu_attribution.domain.periods import period_bounds
from siyu_shared.http.deps import DbSession, Reader

PeriodQuery = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-10"])]
Format = Annotated[Literal["json", "csv"], Query()]

router = APIRouter(prefix="/v1/reports", tags=["reports"])


def _respond(rows: Sequence[dict[str, Any]], fmt: str, name: str) -> Response:
    if fmt == "csv":
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return JSONResponse([{k: _plain(v) for k, v in row.items()} for row in rows])


def _plain(value: Any) -> Any:
    # numeric() comes back as Decimal: whole numbers (fen, counts) as integers, ratios as floats.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


@router.get("/channels")
async def channel_report(
    principal: Reader, session: DbSession, period: PeriodQuery, format: Format = "json"
) -> Response:
    """GMV and user share by channel and source kind (net of refunds; orders closed unfinished excluded)."""
    start, end = period_bounds(period)
    rows = await reports.channels(session, tenant=principal.tenant, start=start, end=end)
    return _respond(rows, format, f"channels-{period}")


@router.get("/repurchase")
async def repurchase_report(
    principal: Reader, session: DbSession, period: PeriodQuery, format: Format = "json"
) -> Response:
    """Repurchase rate (buyers in the period who had bought before) and mean repurchase cycle in days."""
    start, end = period_bounds(period)
    row = await reports.repurchase(session, tenant=principal.tenant, start=start, end=end)
    return _respond([{"period": period, **row}], format, f"repurchase-{period}")


@router.get("/super-users")
async def super_user_report(
    principal: Reader,
    session: DbSession,
    period: PeriodQuery,
    min_orders: Annotated[int, Query(ge=1, le=1000)] = 10,
    format: Format = "json",
) -> Response:
    """Super users (at least `min_orders` orders in the period): count, order value, frequency, GMV share."""
    start, end = period_bounds(period)
    row = await reports.super_users(session, tenant=principal.tenant, start=start, end=end, min_orders=min_orders)
    return _respond([{"period": period, "min_orders": min_orders, **row}], format, f"super-users-{period}")


@router.get("/funnel")
async def funnel_report(
    principal: Reader, session: DbSession, period: PeriodQuery, format: Format = "json"
) -> Response:
    """Leads of the period → reached in private domain → first order → repeat order.

    Referral (裂变) is not reported: no upstream event says who referred whom yet.
    """
    start, end = period_bounds(period)
    row = await reports.funnel(session, tenant=principal.tenant, start=start, end=end)
    return _respond([{"period": period, **row}], format, f"funnel-{period}")


@router.get("/payees")
async def payee_report(principal: Reader, session: DbSession, period: PeriodQuery, format: Format = "json") -> Response:
    """Per staff, activator and KOL/KOC: attributed sales of the period's orders, commission and payable moved."""
    start, end = period_bounds(period)
    rows = await reports.payees(session, tenant=principal.tenant, start=start, end=end, period=period)
    return _respond(rows, format, f"payees-{period}")
