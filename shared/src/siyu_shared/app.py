"""The FastAPI application factory every service uses for its ``api``, ``worker`` and ``all`` roles.

A storage failure in any route answers 503 with ``Retry-After``, never 500 (``StorageFailures``): an exception
no route handled is an outage when its class says so (``is_infrastructure_failure``) or, whatever its class, when
the database does not answer a fresh connection right after it (``DatabaseProbe``). Against a database that
answers, it is a bug and stays a 500. Every 503 a route raises itself gets the same ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from siyu_shared.db.health import DatabaseProbe, is_outage
from siyu_shared.heap import freeze_startup_heap
from siyu_shared.http import keys_api, ops
from siyu_shared.http.openapi import document_refusals
from siyu_shared.logging import configure_logging, get_logger
from siyu_shared.service import Role, Runtime, ServiceSpec, build_runtime, start_runtime, stop_runtime

log = get_logger(__name__)

RETRY_AFTER_S = 5
"""What a 503 asks the caller to wait (seconds): about a database restart."""


def create_app(spec: ServiceSpec, *, role: Role = "all") -> FastAPI:
    """The service's app. The ``worker`` role serves only the operations endpoints next to its loops."""
    settings = spec.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(service=spec.name, level=settings.log_level, json=settings.log_json)
        runtime: Runtime = build_runtime(spec, role)
        app.state.runtime = runtime
        await start_runtime(runtime, role)
        freeze_startup_heap()
        log.info("service_started", role=role, version=spec.version)
        try:
            yield
        finally:
            await stop_runtime(runtime)
            log.info("service_stopped", role=role)

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
    )
    app.add_middleware(StorageFailures)  # inside the metrics: they count the 503 it answers
    app.add_middleware(ops.MetricsMiddleware, service=spec.name)
    app.include_router(ops.router)
    if role in ("api", "all"):
        app.include_router(keys_api.router)
        for router in spec.routers:
            app.include_router(router)

    document_refusals(app)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # 422 with where and why, never echoing the rejected input (it may hold personal data).
        errors = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    return app


class StorageFailures:
    """An exception no route handled answers 503 + ``Retry-After`` when it is a storage failure (see the module);
    any 503 a route answers gets ``Retry-After`` if it has none. Other exceptions pass on (a 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] == 503 and not any(k.lower() == b"retry-after" for k, _ in message["headers"]):
                    message = {**message, "headers": [*message["headers"], _RETRY_AFTER]}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            failed_at = time.monotonic()
            if started or not await _storage_failure(scope, exc, failed_at):
                raise
            route: Any = scope.get("route")
            log.warning(
                "storage_unavailable",
                route=getattr(route, "path", "unmatched"),
                method=scope.get("method"),
                error=repr(exc)[:300],
            )
            reply = JSONResponse(
                {"detail": "storage unavailable, retry later"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
            await reply(scope, receive, send)


_RETRY_AFTER = (b"retry-after", str(RETRY_AFTER_S).encode())


async def _storage_failure(scope: Scope, exc: Exception, failed_at: float) -> bool:
    runtime = getattr(scope["app"].state, "runtime", None)
    database: DatabaseProbe | None = getattr(runtime, "database", None)
    return await is_outage(exc, database, since=failed_at)
