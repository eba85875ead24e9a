"""Commission plans: every change is a new version; an order is settled under the version in force when paid."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from siyu_attribution.adapters import projections
from siyu_attribution.domain.plans import PlanBody, PlanVersion
from siyu_shared.http.deps import Admin, DbSession, Reader
from siyu_shared.values import Text, Timestamp

PLAN_BODY_EXAMPLE: dict[str, Any] = {
    "model": "first_claim",
    "return_window_days": 7,
    "roles": {
        "staff_1v1": {
            "rates_bps": {"*": 500, "skincare": 800},
            "tiers": [{"min_gmv_fen": 10000000, "rates_bps": {"*": 700}}],
            "cap_per_order_fen": 50000,
        },
        "kol": {"rates_bps": {"*": 1000}},
    },
}


class PlanIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "plan_id": "standard",
                    "effective_from": "2026-11-01T00:00:00+08:00",
                    "body": PLAN_BODY_EXAMPLE,
                }
            ]
        },
    )

    plan_id: Text = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    effective_from: Timestamp
    body: PlanBody


class PlanOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "plan_id": "standard",
                    "version": 3,
                    "effective_from": "2026-10-31T16:00:00Z",
                    "body": PLAN_BODY_EXAMPLE,
                }
            ]
        }
    )

    plan_id: str
    version: int
    effective_from: datetime
    body: PlanBody


def _out(plan: PlanVersion) -> PlanOut:
    return PlanOut(plan_id=plan.plan_id, version=plan.version, effective_from=plan.effective_from, body=plan.body)


router = APIRouter(prefix="/v1/plans", tags=["plans"])
PlanId = Annotated[Text, Path(min_length=1, max_length=64, examples=["standard"])]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_plan_version(body: PlanIn, principal: Admin, session: DbSession) -> PlanOut:
    """Add a version of a plan (a new plan id starts at version 1). Versions are never edited."""
    plan = await projections.add_plan_version(
        session, tenant=principal.tenant, plan_id=body.plan_id, effective_from=body.effective_from, body=body.body
    )
    return _out(plan)


@router.get("")
async def list_plans(principal: Reader, session: DbSession) -> list[PlanOut]:
    return [_out(p) for p in await projections.plan_versions(session, tenant=principal.tenant)]


@router.get("/{plan_id}")
async def get_plan(plan_id: PlanId, principal: Reader, session: DbSession) -> list[PlanOut]:
    """Every version of the plan, oldest first."""
    versions = await projections.plan_versions(session, tenant=principal.tenant, plan_id=plan_id)
    if not versions:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such plan")
    return [_out(p) for p in versions]
