"""The FastAPI application factory every service uses for its ``api``, ``worker`` and ``all`` roles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from siyu_shared.heap import freeze_startup_heap
from siyu_shared.http import keys_api, ops
from siyu_shared.http.openapi import document_refusals
from siyu_shared.logging import configure_logging, get_logger
from siyu_shared.service import Role, Runtime, ServiceSpec, build_runtime, start_runtime, stop_runtime

log = get_logger(__name__)


def create_app(spec: ServiceSpec, *, role: Role = "all") -> FastAPI:
    """The service's app. The ``worker`` role serves only the operations endpoints next to its loops."""
    settings = spec.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(service=spec.name, level=settings.log_level, json=settings.log_json)
        runtime: Runtime = build_runtime(spec)
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
