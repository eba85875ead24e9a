"""Journeys CRUD, validate, publish/pause/archive; a person's enrolments and history; per-step counts;
guardrail policy. Every query is the caller's tenant's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path
from pydantic import ValidationError

from siyu_journey.adapters import progress
from siyu_journey.adapters import repository as repo
from siyu_journey.api.schemas import (
    GREETING_EXAMPLE,
    EnrolmentOut,
    JourneyOut,
    PersonHistoryOut,
    StepCountsOut,
    TouchOut,
    ValidationOut,
)
from siyu_journey.domain.definition import INT32_MAX, JourneyDefinition
from siyu_journey.domain.guardrails import GuardrailPolicy
from siyu_journey.domain.validation import validate
from siyu_journey.examples import load_example
from siyu_shared.http.deps import Admin, DbSession, Reader, Writer, error
from siyu_shared.http.errors import invalid_model
from siyu_shared.http.openapi import example_response
from siyu_shared.values import JsonObject, Text

Definition = Annotated[JsonObject, Body(examples=[GREETING_EXAMPLE])]
JourneyId = Annotated[Text, Path(max_length=64, examples=["greeting"])]
"""A journey id as the path names it (an id the definitions allow is a slug of at most 64)."""
Version = Annotated[int, Path(ge=1, le=INT32_MAX, examples=[1])]
PersonId = Annotated[Text, Path(min_length=1, max_length=64, examples=["0ffcac61-6a5a-57ea-9704-7facedd10830"])]
ExampleName = Annotated[Text, Path(max_length=64, examples=["greeting"])]
_POLICY: dict[str, Any] = GuardrailPolicy().model_dump()
"""The defaults a tenant starts with: the guardrails' example in OpenAPI (the model lives in the domain)."""
Action = Literal["publish", "pause", "resume", "archive"]
_STATUS: dict[str, str] = {"publish": "published", "pause": "paused", "resume": "published", "archive": "archived"}


def _parse(raw: dict[str, Any]) -> JourneyDefinition:
    try:
        return JourneyDefinition.model_validate(raw)
    except ValidationError as exc:
        raise invalid_model(exc) from None


def _out(row: Any) -> JourneyOut:
    return JourneyOut(
        journey_id=row.journey_id,
        version=row.version,
        status=row.status,
        definition=row.definition,
        updated_at=row.updated_at,
    )


def build_router(clock: Callable[[], datetime]) -> APIRouter:
    """The routes, reading time from ``clock`` (injected so tests control it)."""
    router = APIRouter(prefix="/v1", tags=["journeys"])

    @router.post("/journeys/validate")
    async def validate_journey(definition: Definition, principal: Reader) -> ValidationOut:
        problems = [str(p) for p in validate(_parse(definition))]
        return ValidationOut(valid=not problems, problems=problems)

    @router.post("/journeys", status_code=201)
    async def save_journey(definition: Definition, principal: Writer, session: DbSession) -> JourneyOut:
        """Creates the journey, or a new draft version of it (the live version keeps running until publish)."""
        parsed = _parse(definition)
        problems = validate(parsed)
        if problems:
            raise HTTPException(400, detail=[str(p) for p in problems])
        version = await repo.add_version(session, tenant=principal.tenant, definition=parsed, now=clock())
        rows = await repo.journey_versions(session, tenant=principal.tenant, journey_id=parsed.id)
        return _out(next(r for r in rows if r.version == version))

    @router.post("/journeys/examples/{name}", status_code=201)
    async def install_example(name: ExampleName, principal: Writer, session: DbSession) -> JourneyOut:
        """Installs one of the shipped example journeys (as a draft) for the caller's tenant."""
        try:
            parsed = load_example(name)
        except FileNotFoundError:
            raise HTTPException(404, detail=f"no example journey {name!r}") from None
        version = await repo.add_version(session, tenant=principal.tenant, definition=parsed, now=clock())
        rows = await repo.journey_versions(session, tenant=principal.tenant, journey_id=parsed.id)
        return _out(next(r for r in rows if r.version == version))

    @router.get("/journeys")
    async def list_journeys(principal: Reader, session: DbSession) -> list[JourneyOut]:
        return [_out(r) for r in await repo.list_journeys(session, tenant=principal.tenant)]

    @router.get("/journeys/{journey_id}")
    async def get_journey(journey_id: JourneyId, principal: Reader, session: DbSession) -> list[JourneyOut]:
        """Every version of the journey, oldest first."""
        rows = await repo.journey_versions(session, tenant=principal.tenant, journey_id=journey_id)
        if not rows:
            raise HTTPException(404, detail="journey not found")
        return [_out(r) for r in rows]

    @router.post(
        "/journeys/{journey_id}/versions/{version}/{action}",
        responses={409: error("the version's status does not allow the action (e.g. pausing a draft)")},
    )
    async def change_status(
        journey_id: JourneyId, version: Version, action: Action, principal: Writer, session: DbSession
    ) -> JourneyOut:
        """publish (older versions stop taking entries; their people finish them), pause/resume, archive."""
        rows = await repo.journey_versions(session, tenant=principal.tenant, journey_id=journey_id)
        row = next((r for r in rows if r.version == version), None)
        if row is None:
            raise HTTPException(404, detail="journey version not found")
        allowed = {
            "publish": {"draft", "paused"},
            "pause": {"published"},
            "resume": {"paused"},
            "archive": {"draft", "published", "paused", "superseded"},
        }[action]
        if row.status not in allowed:
            raise HTTPException(409, detail=f"cannot {action} a {row.status} version")
        await repo.set_status(
            session,
            tenant=principal.tenant,
            journey_id=journey_id,
            version=version,
            status=_STATUS[action],
            now=clock(),
        )
        rows = await repo.journey_versions(session, tenant=principal.tenant, journey_id=journey_id)
        return _out(next(r for r in rows if r.version == version))

    @router.get("/journeys/{journey_id}/counts")
    async def step_counts(journey_id: JourneyId, principal: Reader, session: DbSession) -> StepCountsOut:
        """Per step: entered, waiting, pending, sent, skipped, failed; and how many converted (exited on purchase)."""
        if not await repo.journey_versions(session, tenant=principal.tenant, journey_id=journey_id):
            raise HTTPException(404, detail="journey not found")
        return StepCountsOut(
            journey_id=journey_id,
            converted=await repo.converted(session, tenant=principal.tenant, journey_id=journey_id),
            steps=await repo.step_counts(session, tenant=principal.tenant, journey_id=journey_id),
        )

    @router.get("/persons/{person_id}/journeys")
    async def person_history(person_id: PersonId, principal: Reader, session: DbSession) -> PersonHistoryOut:
        """The person's enrolments and every touch planned for them, with outcome and reason."""
        enrolled = await progress.person_enrolments(session, tenant=principal.tenant, person_id=person_id)
        touched = await progress.person_touches(session, tenant=principal.tenant, person_id=person_id)
        return PersonHistoryOut(
            person_id=person_id,
            enrolments=[EnrolmentOut.model_validate(r, from_attributes=True) for r in enrolled],
            touches=[TouchOut.model_validate(r, from_attributes=True) for r in touched],
        )

    @router.get("/guardrails", responses=example_response(_POLICY))
    async def get_policy(principal: Reader, session: DbSession) -> GuardrailPolicy:
        return await repo.policy(session, tenant=principal.tenant)

    @router.put(
        "/guardrails",
        responses=example_response(_POLICY),
        openapi_extra={"requestBody": {"content": {"application/json": {"example": _POLICY}}}},
    )
    async def put_policy(policy: GuardrailPolicy, principal: Admin, session: DbSession) -> GuardrailPolicy:
        await repo.put_policy(session, tenant=principal.tenant, value=policy, now=clock())
        return policy

    return router
