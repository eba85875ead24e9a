"""Tenant-scoped admin API: channel credentials, deliveries (failed ones and their reprocessing), persons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from siyu_ingest.adapters import deliveries, identity
from siyu_ingest.adapters.channels import ADAPTERS
from siyu_ingest.adapters.deliveries import Delivery
from siyu_ingest.api.params import ChannelName, DeliveryIdPath, PersonIdPath, TenantPath
from siyu_ingest.context import IngestContext
from siyu_ingest.domain.errors import Malformed
from siyu_ingest.domain.identity import lookup_identifier
from siyu_ingest.domain.models import IdentifierKind
from siyu_ingest.processing import SOURCE
from siyu_shared.events.catalog import PersonErased
from siyu_shared.events.envelope import deterministic_event_id
from siyu_shared.events.registry import envelope
from siyu_shared.http.deps import Admin, DbSession, Reader, Writer, error
from siyu_shared.http.errors import invalid
from siyu_shared.http.openapi import example_response
from siyu_shared.messaging.outbox import add_to_outbox
from siyu_shared.values import Count, JsonObject, Text

Status = Literal["pending", "processed", "failed"]


class ChannelCredentialsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"secrets": {"token": "landing-page-token"}, "options": {"accounts": {"acc-1": "kol"}}}]
        },
    )

    secrets: dict[Text, Text] = Field(description="The channel's signing/decryption secrets (stored encrypted).")
    options: JsonObject = Field(
        default_factory=dict, description="Non-secret options, e.g. `accounts` ({account_id: enterprise|kol|koc})."
    )


class ChannelOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"channel": "xiaohongshu", "options": {}, "from": "api"}]}
    )

    channel: str
    options: dict[str, Any]
    from_: str = Field(alias="from", serialization_alias="from")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "channel": "tmall",
                    "dedupe_key": "7112500108330773705",
                    "received_at": "2026-11-22T08:00:00Z",
                    "status": "failed",
                    "attempts": 1,
                    "error": "Malformed: amount 'abc' is not a number",
                    "processed_at": "2026-11-22T08:00:00Z",
                    "body_bytes": 412,
                }
            ]
        }
    )

    id: int
    channel: str
    dedupe_key: str
    received_at: datetime
    status: str
    attempts: int
    error: str | None
    processed_at: datetime | None
    body_bytes: int

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            channel=d.channel,
            dedupe_key=d.dedupe_key,
            received_at=d.received_at,
            status=d.status,
            attempts=d.attempts,
            error=d.error,
            processed_at=d.processed_at,
            body_bytes=len(d.body),
        )


class Requeued(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"requeued": 3}]})

    requeued: int


class LookupIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "wecom_external_userid", "value": "wmLiLei"},
                {"kind": "phone", "value": "138 0013 8000"},
            ]
        },
    )

    kind: IdentifierKind
    value: Text = Field(min_length=1, max_length=200, description="As the channel names it; phones in any form.")


class PersonOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "person_id": "5f0c…",
                    "created_at": "2026-11-22T08:00:00Z",
                    "merged_into": None,
                    "erased_at": None,
                    "identifiers": {"phone": 1, "wecom_external_userid": 1},
                }
            ]
        }
    )

    person_id: str
    created_at: datetime
    merged_into: str | None
    erased_at: datetime | None
    identifiers: dict[str, int] = Field(description="How many identifiers of each kind (values never shown).")


def admin_router(ctx: IngestContext) -> APIRouter:
    router = APIRouter(tags=["ingest admin"])

    @router.put("/v1/tenants/{tenant}/channels/{channel}", response_model=ChannelOut)
    async def put_channel(
        tenant: TenantPath, channel: ChannelName, body: ChannelCredentialsIn, principal: Admin, session: DbSession
    ) -> ChannelOut:
        """Set the tenant's credentials of one channel (secrets are write-only)."""
        adapter = ADAPTERS.get(channel)
        if adapter is None:
            raise HTTPException(404, detail=f"unknown channel {channel!r}")
        missing = [k for k in adapter.required_secrets if not body.secrets.get(k)]
        if missing:
            raise HTTPException(400, detail=f"{channel} needs the secrets: {', '.join(missing)}")
        await ctx.credentials.put(
            session, tenant=principal.tenant, channel=channel, secrets=body.secrets, options=body.options
        )
        return ChannelOut.model_validate({"channel": channel, "options": body.options, "from": "api"})

    @router.get("/v1/tenants/{tenant}/channels", response_model=list[ChannelOut])
    async def list_channels(tenant: TenantPath, principal: Admin, session: DbSession) -> list[ChannelOut]:
        """Channels configured for the tenant (through this API or the demo config file); never the secrets."""
        listed = await ctx.credentials.configured(session, tenant=principal.tenant)
        return [ChannelOut.model_validate(c) for c in listed]

    @router.delete("/v1/tenants/{tenant}/channels/{channel}", status_code=204)
    async def delete_channel(
        tenant: TenantPath, channel: ChannelName, principal: Admin, session: DbSession
    ) -> Response:
        if not await ctx.credentials.remove(session, tenant=principal.tenant, channel=channel):
            raise HTTPException(404, detail="no such channel configuration")
        return Response(status_code=204)

    @router.get("/v1/tenants/{tenant}/deliveries", response_model=list[DeliveryOut])
    async def list_deliveries(
        tenant: TenantPath,
        principal: Reader,
        session: DbSession,
        status: Status | None = None,
        channel: Annotated[Text | None, Query(max_length=32)] = None,
        after_id: Annotated[Count, Query()] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[DeliveryOut]:
        """Raw deliveries (without bodies: they hold personal data), e.g. `?status=failed` with the error."""
        rows = await deliveries.list_for(
            session, tenant=principal.tenant, status=status, channel=channel, after_id=after_id, limit=limit
        )
        return [DeliveryOut.of(d) for d in rows]

    @router.get("/v1/tenants/{tenant}/deliveries/{delivery_id}", response_model=DeliveryOut)
    async def get_delivery(
        tenant: TenantPath, delivery_id: DeliveryIdPath, principal: Reader, session: DbSession
    ) -> DeliveryOut:
        found = await deliveries.get(session, tenant=principal.tenant, delivery_id=delivery_id)
        if found is None:
            raise HTTPException(404, detail="no such delivery")
        return DeliveryOut.of(found)

    @router.post(
        "/v1/tenants/{tenant}/deliveries/{delivery_id}/reprocess",
        response_model=Requeued,
        status_code=202,
        responses={409: error("only a failed delivery is queued again")},
    )
    async def reprocess_one(
        tenant: TenantPath, delivery_id: DeliveryIdPath, principal: Writer, session: DbSession
    ) -> Requeued:
        """Queue a failed delivery again (after a fix); its events keep their ids, so nothing goes out twice."""
        found = await deliveries.get(session, tenant=principal.tenant, delivery_id=delivery_id)
        if found is None:
            raise HTTPException(404, detail="no such delivery")
        if found.status != "failed":
            raise HTTPException(409, detail=f"the delivery is {found.status}, not failed")
        return Requeued(requeued=await deliveries.requeue(session, tenant=principal.tenant, delivery_ids=[delivery_id]))

    @router.post("/v1/tenants/{tenant}/deliveries/reprocess", response_model=Requeued, status_code=202)
    async def reprocess_failed(tenant: TenantPath, principal: Writer, session: DbSession) -> Requeued:
        """Queue every failed delivery of the tenant again."""
        return Requeued(requeued=await deliveries.requeue(session, tenant=principal.tenant))

    @router.get("/v1/tenants/{tenant}/persons/{person_id}", response_model=PersonOut)
    async def get_person(
        tenant: TenantPath, person_id: PersonIdPath, principal: Reader, session: DbSession
    ) -> PersonOut:
        found = await identity.describe(session, tenant=principal.tenant, person_id=person_id)
        if found is None:
            raise HTTPException(404, detail="no such person")
        return PersonOut.model_validate(found)

    @router.post(
        "/v1/tenants/{tenant}/persons/lookup",
        response_model=PersonOut,
        responses={404: {"description": "No person has this identifier"}, 422: {"description": "Never matches"}},
    )
    async def lookup_person(tenant: TenantPath, body: LookupIn, principal: Reader, session: DbSession) -> PersonOut:
        """The person behind an identifier (a WeCom external_userid, a phone, a Taobao buyer...), after merges: how
        an internal tool finds the person id to record a touch or claim for. A POST, so that a phone number never
        appears in a URL or an access log; the reply never shows identifier values."""
        try:
            wanted = lookup_identifier(body.kind, body.value)
        except Malformed as exc:
            raise invalid(loc=("body", "value"), msg=str(exc)) from exc
        key = ctx.vault.match_key(wanted.kind, wanted.value)
        owner = (await identity.owners(session, tenant=principal.tenant, keys={wanted: key})).get(wanted)
        found = owner and await identity.describe(session, tenant=principal.tenant, person_id=owner.person_id)
        if not found:
            raise HTTPException(404, detail="no person has this identifier")
        return PersonOut.model_validate(found)

    @router.post(
        "/v1/tenants/{tenant}/persons/{person_id}/erasure",
        status_code=202,
        responses={
            **example_response({"person_id": "5f0c…", "status": "erased"}, status=202),
            404: {"description": "No such person"},
        },
    )
    async def erase_person(
        tenant: TenantPath, person_id: PersonIdPath, principal: Admin, session: DbSession
    ) -> dict[str, str]:
        """Wipe the person's personal data in ingest and tell every service (`siyu.person.erased`)."""
        survivor = await identity.current(session, tenant=principal.tenant, person_id=person_id)
        if not await identity.erase(session, tenant=principal.tenant, person_id=survivor):
            raise HTTPException(404, detail="no such person")
        event = envelope(
            PersonErased(person_id=survivor, requested_at=datetime.now(UTC)),
            tenant=principal.tenant,
            subject=survivor,
            source=SOURCE,
            event_id=deterministic_event_id("siyu.person.erased", principal.tenant, survivor),
        )
        await add_to_outbox(session, event, topics=ctx.settings.topics)
        return {"person_id": survivor, "status": "erased"}

    return router
