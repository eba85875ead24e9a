"""`/v1/webhooks/{tenant}/{channel}`: verify on the raw bytes, store durably, reply as the platform expects.

Nothing is parsed beyond what the dedupe key needs: processing happens in the worker, so the reply is fast
and a parse bug can never lose a delivery. Status codes: 401 bad signature (nothing stored), 400 malformed,
404 unknown channel or not configured for the tenant, 413 too large, 503 when the database is away (the
platform retries); never 500.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, HTTPException, Path, Request, Response
from sqlalchemy.exc import DBAPIError, OperationalError

from siyu_ingest import samples
from siyu_ingest.adapters import deliveries
from siyu_ingest.adapters.channels import ADAPTERS
from siyu_ingest.adapters.channels.base import ChannelAdapter, Credentials, Reply, WebhookRequest
from siyu_ingest.context import IngestContext
from siyu_ingest.domain.errors import BadSignature, Malformed
from siyu_shared.db.engine import SessionFactory
from siyu_shared.settings import to_libpq_url

TenantPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
ChannelPath = Annotated[str, Path(description=f"one of {', '.join(sorted(ADAPTERS))}", examples=["xiaohongshu"])]
_RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "malformed body (the reason is in `detail`)"},
    401: {"description": "signature does not match the tenant's credentials"},
    404: {"description": "unknown channel, or the channel is not configured for the tenant"},
    413: {"description": "body larger than the limit"},
    503: {"description": "storage unavailable: the platform should retry"},
}


_BODY_EXAMPLES: dict[str, Any] = {
    "description": "The platform's own body, byte for byte (signatures are checked on the raw bytes).",
    "content": {
        "application/json": {
            "examples": {
                "xiaohongshu": {"value": samples.xiaohongshu_lead(leads_id="L-1001", phone="138****0000")},
                "douyin": {"value": samples.douyin_follow(open_id="5bfa0218-x", log_id="202306151447300000")},
                "tmall": {
                    "value": samples.tmall_message(
                        message_id="7112500108330773705",
                        topic="taobao_trade_TradeBuyerPay",
                        tid="3000000000001",
                        buyer="AAH…",
                    )
                },
                "doudian": {
                    "value": [samples.doudian_message(tag="110", msg_id="0428…9128", p_id=4705288465508532862)]
                },
            }
        },
        "text/xml": {
            "example": "<xml><ToUserName><![CDATA[ww_corp]]></ToUserName><Encrypt><![CDATA[base64…]]></Encrypt></xml>"
        },
    },
}


def _reply(reply: Reply) -> Response:
    return Response(content=reply.body, status_code=reply.status, media_type=reply.media_type)


def webhook_router(ctx: IngestContext) -> APIRouter:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        runtime = app.state.runtime
        pool = await asyncpg.create_pool(
            to_libpq_url(ctx.settings.database_url),
            min_size=0,
            max_size=ctx.settings.database_pool_size,
            command_timeout=10,
            reset=_keep_session,  # one INSERT per checkout leaves no session state: skip the reset round trip
            server_settings={"search_path": runtime.spec.schema, "application_name": "ingest-webhooks"},
        )
        ctx.webhook_writer = deliveries.GroupWriter(pool, max_inflight=ctx.settings.webhook_commits_in_flight)
        try:
            yield
        finally:
            ctx.webhook_writer = None
            await pool.close()

    router = APIRouter(tags=["webhooks"], lifespan=lifespan)
    limit = ctx.settings.max_body_bytes

    async def context_of(request: Request, tenant: str, channel: str) -> tuple[ChannelAdapter, Credentials]:
        adapter = ADAPTERS.get(channel)
        if adapter is None:
            raise HTTPException(404, detail=f"unknown channel {channel!r}")
        hit, creds = ctx.credentials.cached(tenant=tenant, channel=channel)
        sessions: SessionFactory = request.app.state.runtime.sessions
        try:
            if not hit:
                async with sessions() as session:
                    creds = await ctx.credentials.get(session, tenant=tenant, channel=channel)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise HTTPException(503, detail="storage unavailable, retry later") from exc
        if creds is None:
            raise HTTPException(404, detail=f"channel {channel!r} is not configured for this tenant")
        return adapter, creds

    @router.post(
        "/v1/webhooks/{tenant}/{channel}",
        responses=_RESPONSES,
        summary="Receive a channel webhook",
        openapi_extra={"requestBody": _BODY_EXAMPLES},
    )
    async def receive(tenant: TenantPath, channel: ChannelPath, request: Request) -> Response:
        """Verify the platform's signature on the raw body, store the delivery once, and acknowledge it."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, detail=f"body larger than {limit} bytes")
        body = await _read_limited(request, limit)
        adapter, creds = await context_of(request, tenant, channel)
        headers = {k.lower(): v for k, v in request.headers.items()}
        incoming = WebhookRequest(body=body, headers=headers, query=dict(request.query_params))
        try:
            adapter.verify(incoming, creds)
            challenge = adapter.challenge(incoming, creds)
            if challenge is not None:
                return _reply(challenge)
            dedupe_key = adapter.dedupe_key(incoming, creds)
        except BadSignature as exc:
            raise HTTPException(401, detail=str(exc)) from exc
        except Malformed as exc:
            raise HTTPException(400, detail=str(exc)) from exc
        kept = {h: headers[h] for h in adapter.signature_headers if h in headers and h != "x-siyu-origin"}
        try:
            await ctx.webhook_writer.store(
                tenant=tenant,
                channel=channel,
                dedupe_key=dedupe_key,
                body=body,
                headers=kept,
                query=dict(request.query_params),
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise HTTPException(503, detail="storage unavailable, retry later") from exc
        return _reply(adapter.ack())

    @router.get("/v1/webhooks/{tenant}/{channel}", responses=_RESPONSES, summary="Answer a URL verification")
    async def verify_url(tenant: TenantPath, channel: ChannelPath, request: Request) -> Response:
        """WeCom `echostr` (verified and decrypted) and the Ocean Engine `challenge` echo."""
        adapter, creds = await context_of(request, tenant, channel)
        incoming = WebhookRequest(body=b"", query=dict(request.query_params))
        try:
            return _reply(adapter.verify_get(incoming, creds))
        except BadSignature as exc:
            raise HTTPException(401, detail=str(exc)) from exc
        except Malformed as exc:
            raise HTTPException(400, detail=str(exc)) from exc

    return router


async def _keep_session(_: object) -> None:
    return None


async def _read_limited(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, detail=f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
