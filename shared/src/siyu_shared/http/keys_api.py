"""API-key administration, mounted on every service: a tenant's admin key manages that tenant's keys only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from siyu_shared.auth.keys import Scope, issue_key, revoke_key
from siyu_shared.http.deps import Admin, DbSession, error
from siyu_shared.messaging.tables import api_keys_table
from siyu_shared.values import TENANT_PATTERN, Text

router = APIRouter(prefix="/v1/tenants/{tenant}/api-keys", tags=["api keys"])
TenantPath = Annotated[str, Path(pattern=TENANT_PATTERN, examples=["glowlab"])]
KeyIdPath = Annotated[Text, Path(max_length=64, examples=["3f9a1c2e7b4d6a05"])]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "bi-export", "scopes": ["read"]}]}
    )

    name: Text = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key_id": "3f9a1c2e7b4d6a05",
                    "tenant": "glowlab",
                    "name": "bi-export",
                    "scopes": ["read"],
                    "created_at": "2026-11-22T08:00:00Z",
                    "revoked_at": None,
                }
            ]
        }
    )

    key_id: str
    tenant: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyIssued(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key_id": "3f9a1c2e7b4d6a05",
                    "tenant": "glowlab",
                    "scopes": ["read"],
                    "api_key": "siyu_3f9a1c2e7b4d6a05_example-only-never-a-real-key-0000000000000",
                }
            ]
        }
    )

    key_id: str
    tenant: str
    scopes: list[str]
    api_key: str = Field(description="Shown once; only its hash is stored.")


@router.get("", summary="List the tenant's API keys")
async def list_keys(tenant: TenantPath, principal: Admin, session: DbSession) -> list[ApiKeyOut]:
    rows = (
        await session.execute(
            select(api_keys_table)
            .where(api_keys_table.c.tenant == principal.tenant)
            .order_by(api_keys_table.c.created_at)
        )
    ).mappings()
    return [ApiKeyOut.model_validate(dict(row)) for row in rows]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Issue an API key for the tenant")
async def create_key(tenant: TenantPath, body: ApiKeyCreate, principal: Admin, session: DbSession) -> ApiKeyIssued:
    issued = await issue_key(session, tenant=principal.tenant, scopes=tuple(body.scopes), name=body.name)
    return ApiKeyIssued(
        key_id=issued.key_id, tenant=issued.tenant, scopes=list(issued.scopes), api_key=issued.plaintext
    )


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke one of the tenant's keys",
    responses={404: error("no such active key for this tenant (another tenant's key is reported absent too)")},
)
async def delete_key(tenant: TenantPath, key_id: KeyIdPath, principal: Admin, session: DbSession) -> None:
    owner = await session.scalar(select(api_keys_table.c.tenant).where(api_keys_table.c.key_id == key_id))
    # Another tenant's key is reported as absent: a key must not even learn that it exists.
    if owner != principal.tenant or not await revoke_key(session, key_id=key_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such active key for this tenant")
