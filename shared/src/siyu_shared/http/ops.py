"""Operations endpoints: liveness, readiness (what the process's role needs answers) and Prometheus metrics.

Readiness checks what the role cannot work without (``siyu_shared.service.READINESS``): the api role the database
only (it stores what it accepts and leaves Kafka to the worker's outbox relay, so a Kafka outage keeps it in its
Service), the worker and ``all`` roles the database and Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from siyu_shared.http.openapi import example_response
from siyu_shared.metrics import HTTP_LATENCY, HTTP_REQUESTS

router = APIRouter(tags=["operations"])

Check = Callable[[], Awaitable[None]]


@router.get(
    "/healthz",
    summary="Liveness: the process is up",
    responses=example_response({"status": "ok"}),
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: what this role needs answers (api: the database; worker and all: the database and Kafka)",
    responses={
        **example_response({"status": "ready", "checks": {"database": "ok", "kafka": "ok"}}),
        **example_response(
            {"status": "not ready", "checks": {"database": "ok", "kafka": "TimeoutError()"}}, status=503
        ),
    },
)
async def readyz(request: Request) -> JSONResponse:
    runtime = request.app.state.runtime
    checks: dict[str, Check] = runtime.readiness_checks()
    timeout: float = runtime.settings.readiness_timeout_s
    results = await asyncio.gather(*(_run_check(check, timeout) for check in checks.values()))
    outcome = dict(zip(checks, results, strict=True))
    ready = all(result == "ok" for result in outcome.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": outcome}, status_code=200 if ready else 503
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _run_check(check: Check, seconds: float) -> str:
    try:
        async with asyncio.timeout(seconds):
            await check()
    except Exception as exc:
        return repr(exc)[:300] or type(exc).__name__
    return "ok"


class MetricsMiddleware:
    """Counts and times requests by route template (never by raw path: ids would explode the label space)."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(self.service, method, template, str(status_code)).inc()
            HTTP_LATENCY.labels(self.service, method, template).observe(time.perf_counter() - started)
