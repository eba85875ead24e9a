"""FastAPI dependencies every service shares: the request's transaction and the caller's API key.

``DbSession`` is the request's unit of work: it commits when the route returns and before the response is
sent (``scope="function"``), so a 2xx always means the change is durable; any exception rolls it back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, status
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


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error("missing or invalid API key"),
    403: error("the API key lacks the scope, or belongs to another tenant than the path names"),
}
"""What every route behind ``Reader``/``Writer``/``Admin`` may answer besides its own: put it in the router's
``responses=`` (FastAPI documents no response of a dependency by itself)."""

BODY_RESPONSES: dict[int | str, dict[str, Any]] = {400: error("the body could not be read (it is not UTF-8 text)")}
"""What FastAPI answers, before any validation, to a JSON body whose bytes are not UTF-8."""


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


async def get_principal(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    presented = x_api_key
    if presented is None and authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:]
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
