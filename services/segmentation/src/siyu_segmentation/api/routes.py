"""HTTP API: rules, dry runs, packs, backfills, profiles with tag reasons, members (JSON or CSV), tag counts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from fastapi.exceptions import RequestValidationError

from siyu_segmentation import service
from siyu_segmentation.adapters import jobs, profiles, rule_store, tags
from siyu_segmentation.api.schemas import (
    BACKFILL_EXAMPLE,
    CONDITION_MEMBERS_CSV,
    CONDITION_MEMBERS_EXAMPLE,
    INSTALLED_EXAMPLE,
    PERSON,
    PERSON_EXAMPLE,
    RULE_EXAMPLE,
    TAG_COUNTS_EXAMPLE,
    TAG_MEMBERS_CSV,
    TAG_MEMBERS_EXAMPLE,
    Backfill,
    CancelRequested,
    ConditionMembers,
    DryRun,
    FamilyIn,
    Installed,
    MembersQuery,
    Person,
    PersonTag,
    RuleOut,
    SavedRule,
    TagCounts,
    TagMember,
    TagMembers,
)
from siyu_segmentation.domain.rules import RuleError, parse_condition
from siyu_segmentation.domain.tagging import SLUG, RuleBody, jsonable
from siyu_segmentation.packs import Pack, shipped_packs
from siyu_shared.http.deps import Admin, DbSession, Reader, Writer, error
from siyu_shared.http.errors import invalid
from siyu_shared.http.openapi import example_response
from siyu_shared.values import Id, Text

router = APIRouter(prefix="/v1", tags=["segmentation"])
RuleId = Annotated[Text, Path(pattern=SLUG, examples=["super-vip"])]
"""A rule id as a new rule takes it."""
# Ids as the path names them, to look up: text a varchar(64) column can hold (a longer one matches nothing).
KnownRuleId = Annotated[Text, Path(max_length=64, examples=["super-vip"])]
PackName = Annotated[Text, Path(max_length=64, examples=["dcba"])]
JobId = Annotated[Id, Path(examples=[12])]
PersonId = Annotated[Text, Path(min_length=1, max_length=64, examples=[PERSON])]
Tag = Annotated[Text, Path(max_length=64, examples=["super_vip"])]
PersonCursor = Annotated[
    Text | None, Query(max_length=64, description="The `next_after` of the previous page.", examples=[PERSON])
]

_RULE_BODY: dict[str, Any] = {"requestBody": {"content": {"application/json": {"example": RULE_EXAMPLE}}}}


TAG_TAKEN = "the tag is already decided by another rule"


def _rule_error(exc: RuleError) -> RequestValidationError:
    return invalid(loc=("body", *exc.path.split(".")), msg=exc.message)


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/rules")
async def list_rules(principal: Reader, session: DbSession) -> list[RuleOut]:
    return [RuleOut(**dict(r)) for r in await rule_store.list_rules(session, principal.tenant)]


@router.get("/rules/{rule_id}")
async def get_rule(rule_id: KnownRuleId, principal: Reader, session: DbSession) -> RuleOut:
    row = await rule_store.get_rule(session, principal.tenant, rule_id)
    if row is None:
        raise HTTPException(404, detail="no such rule")
    return RuleOut(**dict(row))


@router.put("/rules/{rule_id}", openapi_extra=_RULE_BODY, responses={409: error(TAG_TAKEN)})
async def put_rule(rule_id: RuleId, body: RuleBody, principal: Writer, session: DbSession) -> SavedRule:
    """Create or change a rule (a new version); a backfill re-decides its tag for everyone."""
    try:
        version, job = await service.put_rule(session, tenant=principal.tenant, rule_id=rule_id, body=body)
    except service.Conflict as exc:
        raise HTTPException(409, detail=str(exc)) from None
    return SavedRule(rule_id=rule_id, version=version, backfill_id=job)


@router.delete("/rules/{rule_id}")
async def delete_rule(rule_id: KnownRuleId, principal: Writer, session: DbSession) -> SavedRule:
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
    family: Annotated[Text, Path(pattern=SLUG, examples=["value"])],
    body: FamilyIn,
    principal: Writer,
    session: DbSession,
) -> None:
    await rule_store.save_family(
        session, tenant=principal.tenant, family=family, exclusive=body.exclusive, description=body.description
    )


@router.get("/packs", responses=example_response([shipped_packs()["channel"].model_dump(mode="json")]))
async def list_packs(principal: Reader) -> list[Pack]:
    return list(shipped_packs().values())


@router.post("/packs/{name}/install", responses={**example_response(INSTALLED_EXAMPLE), 409: error(TAG_TAKEN)})
async def install_pack(name: PackName, principal: Admin, session: DbSession) -> Installed:
    pack = shipped_packs().get(name)
    if pack is None:
        raise HTTPException(404, detail="no such pack")
    try:
        installed, job = await service.install_pack(session, tenant=principal.tenant, pack=pack)
    except service.Conflict as exc:
        raise HTTPException(409, detail=str(exc)) from None
    return Installed(pack=name, rules=installed, backfill_id=job)


@router.get("/backfills", responses=example_response([BACKFILL_EXAMPLE]))
async def list_backfills(principal: Reader, session: DbSession) -> list[Backfill]:
    return [Backfill.model_validate(dict(r)) for r in await jobs.list_backfills(session, tenant=principal.tenant)]


@router.get("/backfills/{job_id}", responses=example_response(BACKFILL_EXAMPLE))
async def get_backfill(job_id: JobId, principal: Reader, session: DbSession) -> Backfill:
    row = await jobs.get_backfill(session, tenant=principal.tenant, job_id=job_id)
    if row is None:
        raise HTTPException(404, detail="no such backfill")
    return Backfill.model_validate(dict(row))


@router.post(
    "/backfills/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=example_response({"backfill_id": 12, "cancel_requested": True}, status=status.HTTP_202_ACCEPTED),
)
async def cancel_backfill(job_id: JobId, principal: Writer, session: DbSession) -> CancelRequested:
    if not await jobs.request_cancel(session, tenant=principal.tenant, job_id=job_id):
        raise HTTPException(404, detail="no such running backfill")
    return CancelRequested(backfill_id=job_id, cancel_requested=True)


@router.get("/persons/{person_id}", responses=example_response(PERSON_EXAMPLE))
async def get_person(person_id: PersonId, principal: Reader, session: DbSession) -> Person:
    """The person's facts and tags, each tag with the rule version, time and facts that put it there."""
    profile = await profiles.load_profile(session, tenant=principal.tenant, person_id=person_id)
    if profile is None:
        raise HTTPException(404, detail="no such person")
    reasons = await tags.person_tag_rows(session, tenant=principal.tenant, person_id=person_id)
    return Person(
        person_id=person_id,
        facts={name: jsonable(value) for name, value in profile.values.items()},
        attributes=profile.attributes,
        orders=len(profile.orders),
        tags=[PersonTag.model_validate(dict(r)) for r in reasons],
    )


@router.get(
    "/tags/{tag}/members",
    response_model=TagMembers,
    responses=example_response(TAG_MEMBERS_EXAMPLE, csv=TAG_MEMBERS_CSV),
)
async def tag_members(
    tag: Tag,
    principal: Reader,
    session: DbSession,
    after: PersonCursor = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> TagMembers | Response:
    rows = await service.members_of_tag(session, tenant=principal.tenant, tag=tag, after=after, limit=limit)
    if format == "csv":
        return Response(service.to_csv(rows, list(TagMember.model_fields)), media_type="text/csv")
    members = [TagMember.model_validate(r) for r in rows]
    return TagMembers(members=members, next_after=rows[-1]["person_id"] if len(rows) == limit else None)


@router.post(
    "/members/query",
    response_model=ConditionMembers,
    responses=example_response(CONDITION_MEMBERS_EXAMPLE, csv=CONDITION_MEMBERS_CSV),
)
async def query_members(
    query: MembersQuery,
    principal: Reader,
    session: DbSession,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> ConditionMembers | Response:
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
    return ConditionMembers(members=ids, next_after=ids[-1] if len(ids) == query.limit else None)


@router.get("/tags/counts", responses=example_response(TAG_COUNTS_EXAMPLE))
async def counts(principal: Reader, session: DbSession, since: date | None = None) -> TagCounts:
    """Members per tag now, and per day as snapshotted by the sweep (segment sizes over time)."""
    now, daily = await jobs.tag_counts_now_and_daily(session, tenant=principal.tenant, since=since)
    return TagCounts.model_validate({"now": now, "daily": daily})
