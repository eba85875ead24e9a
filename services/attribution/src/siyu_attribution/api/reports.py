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
from siyu_shared.http.openapi import example_response
from siyu_shared.values import Period

PeriodQuery = Annotated[Period, Query(examples=["2026-10"])]
Format = Annotated[Literal["json", "csv"], Query()]

router = APIRouter(prefix="/v1/reports", tags=["reports"])
# A report is a JSON array of rows, or the same rows as CSV with `?format=csv`.
_ROWS: dict[str, Any] = {"type": "array", "items": {"type": "object"}}


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


@router.get(
    "/channels",
    responses=example_response(
        [
            {
                "channel": "tmall",
                "source_kind": "kol",
                "orders": 17,
                "users": 15,
                "gmv_fen": 469300,
                "gmv_share": 0.2283,
                "user_share": 0.2,
            }
        ],
        schema=_ROWS,
        csv=True,
    ),
)
async def channel_report(
    principal: Reader, session: DbSession, period: PeriodQuery, format: Format = "json"
) -> Response:
    """GMV and user share by channel and source kind (net of refunds; orders closed unfinished excluded)."""
    start, end = period_bounds(period)
    rows = await reports.channels(session, tenant=principal.tenant, start=start, end=end)
    return _respond(rows, format, f"channels-{period}")


@router.get(
    "/repurchase",
    responses=example_response(
        [
            {
                "period": "2026-10",
                "buyers": 50,
                "repeat_buyers": 19,
                "repurchase_rate": 0.38,
                "repurchase_cycle_days": 21.5,
            }
        ],
        schema=_ROWS,
        csv=True,
    ),
)
async def repurchase_report(
    principal: Reader, session: DbSession, period: PeriodQuery, format: Format = "json"
) -> Response:
    """Repurchase rate (buyers in the period who had bought before) and mean repurchase cycle in days."""
    start, end = period_bounds(period)
    row = await reports.repurchase(session, tenant=principal.tenant, start=start, end=end)
    return _respond([{"period": period, **row}], format, f"repurchase-{period}")


@router.get(
    "/super-users",
    responses=example_response(
        [
            {
                "period": "2026-10",
                "min_orders": 10,
                "super_users": 3,
                "avg_order_value_fen": 15900,
                "avg_orders": 11.33,
                "gmv_fen": 540600,
                "gmv_share": 0.12,
            }
        ],
        schema=_ROWS,
        csv=True,
    ),
)
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


@router.get(
    "/funnel",
    responses=example_response(
        [{"period": "2026-10", "leads": 120, "reached": 80, "first_order": 50, "repeat_order": 19}],
        schema=_ROWS,
        csv=True,
    ),
)
async def funnel_report(
    principal: Reader, session: DbSession, period: PeriodQuery, format: Format = "json"
) -> Response:
    """Leads of the period → reached in private domain → first order → repeat order.

    Referral (裂变) is not reported: no upstream event says who referred whom yet.
    """
    start, end = period_bounds(period)
    row = await reports.funnel(session, tenant=principal.tenant, start=start, end=end)
    return _respond([{"period": period, **row}], format, f"funnel-{period}")


@router.get(
    "/attribution",
    responses=example_response(
        [
            {"credited_to": "staff_1v1", "orders": 40, "gmv_fen": 1120000, "order_share": 0.5063},
            {"credited_to": "none", "orders": 15, "gmv_fen": 301500, "order_share": 0.1899},
            {"credited_to": "kol+staff_1v1", "orders": 9, "gmv_fen": 255100, "order_share": 0.1139},
            {"credited_to": "activity_only", "orders": 3, "gmv_fen": 89700, "order_share": 0.038},
        ],
        schema=_ROWS,
        csv=True,
    ),
)
async def attribution_report(
    principal: Reader, session: DbSession, period: PeriodQuery, format: Format = "json"
) -> Response:
    """How the period's orders were attributed: per outcome (the roles credited with commission, `activity_only`
    or `none`) the orders, their GMV net of refunds, and their share of the period's orders."""
    start, end = period_bounds(period)
    rows = await reports.attribution(session, tenant=principal.tenant, start=start, end=end)
    return _respond(rows, format, f"attribution-{period}")


@router.get(
    "/payees",
    responses=example_response(
        [
            {
                "payee_id": "xwz_01",
                "payee_role": "staff_1v1",
                "orders": 16,
                "activity_credits": 0,
                "attributed_sales_fen": 419400,
                "commission_fen": 20970,
                "payable_fen": 0,
            }
        ],
        schema=_ROWS,
        csv=True,
    ),
)
async def payee_report(principal: Reader, session: DbSession, period: PeriodQuery, format: Format = "json") -> Response:
    """Per staff, activator and KOL/KOC: attributed sales of the period's orders, commission and payable moved."""
    start, end = period_bounds(period)
    rows = await reports.payees(session, tenant=principal.tenant, start=start, end=end, period=period)
    return _respond(rows, format, f"payees-{period}")
