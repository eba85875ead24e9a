"""HTTP API: rules, dry runs, packs, backfills, profiles with tag reasons, members (JSON or CSV), tag counts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from siyu_segmentation import service
from siyu_segmentation.adapters import jobs, profiles, rule_store, tags
from siyu_segmentation.domain.rules import RuleError, parse_condition
from siyu_segmentation.domain.tagging import SLUG, RuleBody, jsonable
from siyu_segmentation.packs import shipped_packs
from siyu_shared.http.deps import Admin, DbSession, Reader, Writer
from siyu_shared.http.openapi import example_response

router = APIRouter(prefix="/v1", tags=["segmentation"])
RuleId = Annotated[str, Field(pattern=SLUG)]
PERSON = "0ffcac61-6a5a-57ea-9704-7facedd10830"
RULE_EXAMPLE: dict[str, Any] = {
    "tag": "super_vip",
    "family": "value",
    "priority": 10,
    "description": "More than 10 orders in the last year.",
    "enabled": True,
    "when": {"count": "orders", "within": "365d", "gt": 10},
}
BACKFILL_EXAMPLE: dict[str, Any] = {
    "id": 12,
    "tenant": "glowlab",
    "reason": "rule super-vip v2",
    "scope": ["super_vip"],
    "status": "running",
    "total": 20000,
    "processed": 5000,
    "changed": 312,
    "cursor": PERSON,
    "cancel_requested": False,
    "error": None,
    "started_at": "2026-11-22T08:00:00Z",
    "finished_at": None,
}


class RuleOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rule_id": "super-vip",
                    "version": 2,
                    "pack": None,
                    "body": RULE_EXAMPLE,
                    "time_dependent": True,
                    "updated_at": "2026-11-22T08:00:00Z",
                }
            ]
        }
    )

    rule_id: str
    version: int
    pack: str | None
    body: dict[str, Any]
    time_dependent: bool
    updated_at: datetime


class SavedRule(BaseModel):
    rule_id: str = Field(examples=["super-vip"])
    version: int = Field(examples=[2], description="The new version; 0 when the rule was deleted.")
    backfill_id: int = Field(description="The backfill that re-decides the tag for the whole tenant.", examples=[12])


class DryRun(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"gain": 2, "lose": 0, "sample_gain": [PERSON, "a8d1…"], "sample_lose": []}]}
    )

    gain: int
    lose: int
    sample_gain: list[str]
    sample_lose: list[str]


class FamilyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"exclusive": True, "description": "Value tier: one per person."}]},
    )

    exclusive: bool = Field(examples=[True])
    description: str = ""


class MembersQuery(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"when": {"fact": "last_order_at", "older_than": "90d"}, "after": None, "limit": 100}]
        },
    )

    when: dict[str, Any] = Field(examples=[{"fact": "last_order_at", "older_than": "90d"}])
    after: str | None = None
    limit: int = Field(default=100, ge=1, le=10000)


_RULE_BODY: dict[str, Any] = {"requestBody": {"content": {"application/json": {"example": RULE_EXAMPLE}}}}


def _rule_error(exc: RuleError) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["body", *exc.path.split(".")], "msg": exc.message}])


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/rules")
async def list_rules(principal: Reader, session: DbSession) -> list[RuleOut]:
    return [RuleOut(**dict(r)) for r in await rule_store.list_rules(session, principal.tenant)]


@router.get("/rules/{rule_id}")
async def get_rule(rule_id: str, principal: Reader, session: DbSession) -> RuleOut:
    row = await rule_store.get_rule(session, principal.tenant, rule_id)
    if row is None:
        raise HTTPException(404, detail="no such rule")
    return RuleOut(**dict(row))


@router.put("/rules/{rule_id}", openapi_extra=_RULE_BODY)
async def put_rule(rule_id: RuleId, body: RuleBody, principal: Writer, session: DbSession) -> SavedRule:
    """Create or change a rule (a new version); a backfill re-decides its tag for everyone."""
    try:
        version, job = await service.put_rule(session, tenant=principal.tenant, rule_id=rule_id, body=body)
    except service.Conflict as exc:
        raise HTTPException(409, detail=str(exc)) from None
    return SavedRule(rule_id=rule_id, version=version, backfill_id=job)


@router.delete("/rules/{rule_id}")
async def delete_rule(rule_id: str, principal: Writer, session: DbSession) -> SavedRule:
    job = await service.delete_rule(session, tenant=principal.tenant, rule_id=rule_id)
    if job is None:
        raise HTTPException(404, detail="no such rule")
    return SavedRule(rule_id=rule_id, version=0, backfill_id=job)


@router.post("/rules/dry-run", openapi_extra=_RULE_BODY)
async def dry_run(body: RuleBody, principal: Reader, session: DbSession) -> DryRun:
    """How many people would gain and lose the tag, with a sample; changes nothing."""
    return DryRun(**await service.dry_run(session, tenant=principal.tenant, body=body, now=_now()))


@router.put("/families/{family}", status_code=status.HTTP_204_NO_CONTENT)
async def put_family(
    family: Annotated[str, Field(pattern=SLUG)], body: FamilyIn, principal: Writer, session: DbSession
) -> None:
    await rule_store.save_family(
        session, tenant=principal.tenant, family=family, exclusive=body.exclusive, description=body.description
    )


@router.get("/packs", responses=example_response([shipped_packs()["channel"].model_dump(mode="json")]))
async def list_packs(principal: Reader) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json") for p in shipped_packs().values()]


@router.post(
    "/packs/{name}/install",
    responses=example_response({"pack": "dcba", "rules": ["dcba-a", "dcba-b", "dcba-c", "dcba-d"], "backfill_id": 12}),
)
async def install_pack(name: str, principal: Admin, session: DbSession) -> dict[str, Any]:
    pack = shipped_packs().get(name)
    if pack is None:
        raise HTTPException(404, detail="no such pack")
    try:
        installed, job = await service.install_pack(session, tenant=principal.tenant, pack=pack)
    except service.Conflict as exc:
        raise HTTPException(409, detail=str(exc)) from None
    return {"pack": name, "rules": installed, "backfill_id": job}


@router.get("/backfills", responses=example_response([BACKFILL_EXAMPLE]))
async def list_backfills(principal: Reader, session: DbSession) -> list[dict[str, Any]]:
    return [dict(r) for r in await jobs.list_backfills(session, tenant=principal.tenant)]


@router.get("/backfills/{job_id}", responses=example_response(BACKFILL_EXAMPLE))
async def get_backfill(job_id: int, principal: Reader, session: DbSession) -> dict[str, Any]:
    row = await jobs.get_backfill(session, tenant=principal.tenant, job_id=job_id)
    if row is None:
        raise HTTPException(404, detail="no such backfill")
    return dict(row)


@router.post(
    "/backfills/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=example_response({"backfill_id": 12, "cancel_requested": True}, status=status.HTTP_202_ACCEPTED),
)
async def cancel_backfill(job_id: int, principal: Writer, session: DbSession) -> dict[str, Any]:
    if not await jobs.request_cancel(session, tenant=principal.tenant, job_id=job_id):
        raise HTTPException(404, detail="no such running backfill")
    return {"backfill_id": job_id, "cancel_requested": True}


@router.get(
    "/persons/{person_id}",
    responses=example_response(
        {
            "person_id": PERSON,
            "facts": {
                "first_channel": "xiaohongshu",
                "channels": ["tmall", "wecom", "xiaohongshu"],
                "wecom_status": "friend",
                "order_count": 2,
                "net_fen": 59800,
                "last_order_at": "2026-11-20T12:30:00+00:00",
            },
            "attributes": {"skin_type": "dry"},
            "orders": 2,
            "tags": [
                {
                    "tag": "dcba_a_buying",
                    "family": "dcba",
                    "rule_id": "dcba-a",
                    "rule_version": 1,
                    "tagged_at": "2026-11-20T12:30:01Z",
                    "facts": {"order_count": 2},
                }
            ],
        }
    ),
)
async def get_person(person_id: str, principal: Reader, session: DbSession) -> dict[str, Any]:
    """The person's facts and tags, each tag with the rule version, time and facts that put it there."""
    profile = await profiles.load_profile(session, tenant=principal.tenant, person_id=person_id)
    if profile is None:
        raise HTTPException(404, detail="no such person")
    reasons = await tags.person_tag_rows(session, tenant=principal.tenant, person_id=person_id)
    return {
        "person_id": person_id,
        "facts": {name: jsonable(value) for name, value in profile.values.items()},
        "attributes": profile.attributes,
        "orders": len(profile.orders),
        "tags": [
            {k: r[k] for k in ("tag", "family", "rule_id", "rule_version", "tagged_at", "facts")} for r in reasons
        ],
    }


@router.get(
    "/tags/{tag}/members",
    response_model=None,
    responses=example_response(
        {
            "members": [
                {"person_id": PERSON, "rule_id": "super-vip", "rule_version": 2, "tagged_at": "2026-11-22T08:00:05Z"}
            ],
            "next_after": PERSON,
        },
        schema={"type": "object"},
        csv=f"person_id,rule_id,rule_version,tagged_at\r\n{PERSON},super-vip,2,2026-11-22T08:00:05+00:00\r\n",
    ),
)
async def tag_members(
    tag: str,
    principal: Reader,
    session: DbSession,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> dict[str, Any] | Response:
    rows = await service.members_of_tag(session, tenant=principal.tenant, tag=tag, after=after, limit=limit)
    if format == "csv":
        csv_text = service.to_csv(rows, ["person_id", "rule_id", "rule_version", "tagged_at"])
        return Response(csv_text, media_type="text/csv")
    return {"members": rows, "next_after": rows[-1]["person_id"] if len(rows) == limit else None}


@router.post(
    "/members/query",
    response_model=None,
    responses=example_response(
        {"members": [PERSON], "next_after": PERSON}, schema={"type": "object"}, csv=f"person_id\r\n{PERSON}\r\n"
    ),
)
async def query_members(
    query: MembersQuery,
    principal: Reader,
    session: DbSession,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> dict[str, Any] | Response:
    """Members of an ad-hoc condition (the rule language), paginated by person id."""
    try:
        condition = parse_condition(query.when)
    except RuleError as exc:
        raise _rule_error(exc) from None
    ids = await service.members_of_condition(
        session, tenant=principal.tenant, condition=condition, now=_now(), after=query.after, limit=query.limit
    )
    if format == "csv":
        return Response(service.to_csv([{"person_id": i} for i in ids], ["person_id"]), media_type="text/csv")
    return {"members": ids, "next_after": ids[-1] if len(ids) == query.limit else None}


@router.get(
    "/tags/counts",
    responses=example_response(
        {
            "now": {"dcba_a_buying": 58, "super_vip": 3},
            "daily": [
                {"day": "2026-11-21", "tag": "dcba_a_buying", "members": 55},
                {"day": "2026-11-21", "tag": "super_vip", "members": 3},
            ],
        }
    ),
)
async def counts(principal: Reader, session: DbSession, since: date | None = None) -> dict[str, Any]:
    """Members per tag now, and per day as snapshotted by the sweep (segment sizes over time)."""
    now, daily = await jobs.tag_counts_now_and_daily(session, tenant=principal.tenant, since=since)
    return {"now": now, "daily": daily}
