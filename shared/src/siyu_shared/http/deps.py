"""FastAPI dependencies every service shares: the request's transaction and the caller's API key.

``DbSession`` is the request's unit of work: it commits when the route returns and before the response is
sent (``scope="function"``), so a 2xx always means the change is durable; any exception rolls it back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_shared.auth.keys import Principal, Scope, authenticate
from siyu_shared.db.engine import SessionFactory


class ErrorOut(BaseModel):
    """Every refusal that is not a validation error (those are 422 with their locations): why, in ``detail``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "no such rule"}]})

    detail: str


def error(description: str) -> dict[str, Any]:
    """One entry of a route's ``responses=``: a refusal answered as :class:`ErrorOut`."""
    return {"model": ErrorOut, "description": description}


def sessions_of(request: Request) -> SessionFactory:
    sessions: SessionFactory = request.app.state.runtime.sessions
    return sessions


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with sessions_of(request)() as session, session.begin():
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]

_UNAUTHORIZED = HTTPException(
    status_code=status.HTTP_401_UNAUTHORIZED,
    detail="missing or invalid API key (send `Authorization: Bearer siyu_…` or `X-API-Key`)",
    headers={"WWW-Authenticate": "Bearer"},
)


_BEARER = HTTPBearer(auto_error=False, scheme_name="bearer", description="`Authorization: Bearer siyu_…`")
_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey", description="the key itself")


async def get_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None,
    x_api_key: Annotated[str | None, Depends(_API_KEY)] = None,
) -> Principal:
    """The caller behind the presented key (either header; declared as security schemes, so every keyed operation
    says in OpenAPI that it takes one)."""
    presented = x_api_key if x_api_key is not None else (bearer.credentials if bearer else None)
    if not presented:
        raise _UNAUTHORIZED
    async with sessions_of(request)() as session:
        principal = await authenticate(session, presented)
    if principal is None:
        raise _UNAUTHORIZED
    # A key is valid for its own tenant only: any tenant named in the path must be the key's.
    path_tenant = request.path_params.get("tenant")
    if path_tenant is not None and path_tenant != principal.tenant:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="this API key belongs to another tenant")
    return principal


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and checks one scope."""

    async def dependency(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.allows(scope):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this API key lacks the `{scope}` scope")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
Admin = Annotated[Principal, Depends(require("admin"))]
