"""`/v1/webhooks/{tenant}/{channel}`: verify on the raw bytes, store durably, reply as the platform expects.

Nothing is parsed beyond what the dedupe key needs: processing happens in the worker, so the reply is fast
and a parse bug can never lose a delivery. Status codes: 401 bad signature (nothing stored), 400 malformed, stale
(a signed send time outside ``INGEST_CALLBACK_MAX_AGE_S``) or unstorable (a NUL or an integer beyond int64 in the
decoded payload, the dedupe id, the query or a kept header: a permanent fault the platform must not retry), 404
unknown channel or not configured for the tenant, 413 too large, 422 a tenant id outside the one rule
(``siyu_shared.values.TENANT_PATTERN``), 503 with ``Retry-After`` whenever storage fails for any other reason (the
platform retries); never 500.

Only the platforms' deliveries come this way. What ingest stores itself (the worker's WeCom contact details, the TMC
poller's messages, imports) is written by its own code path, on channels no route here serves or with nothing a
caller could select: no header or field of a request decides how a delivery is read.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

import asyncpg
import orjson
from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from siyu_ingest import samples
from siyu_ingest.adapters import deliveries
from siyu_ingest.adapters.channels import ADAPTERS
from siyu_ingest.adapters.channels.base import ChannelAdapter, Credentials, Reply, WebhookRequest
from siyu_ingest.adapters.deliveries import StorageUnavailable, Unstorable
from siyu_ingest.api.params import TenantPath
from siyu_ingest.context import IngestContext
from siyu_ingest.domain.errors import BadSignature, Malformed
from siyu_ingest.metrics import REFUSED_DELIVERIES, STALE_CALLBACKS
from siyu_shared.app import RETRY_AFTER_S
from siyu_shared.db.engine import SessionFactory
from siyu_shared.logging import get_logger
from siyu_shared.settings import to_libpq_url
from siyu_shared.values import Text, unstorable

log = get_logger(__name__)
WEBHOOK_PATH = "/v1/webhooks/{tenant}/{channel}"
"""What a 503 tells the platform to wait before it retries (most platforms retry on their own schedule anyway)."""
CHANNEL_MAX = 32
ChannelPath = Annotated[
    Text, Path(max_length=CHANNEL_MAX, description=f"one of {', '.join(sorted(ADAPTERS))}", examples=["xiaohongshu"])
]
_RESPONSES: dict[int | str, dict[str, str]] = {
    400: {
        "description": "malformed, stale (signed send time outside the freshness window) or unstorable (a NUL or an "
        "integer beyond int64 in the payload, dedupe id, query or headers): a permanent fault, not to be retried; the "
        "reason is in `detail`"
    },
    401: {"description": "signature does not match the tenant's credentials"},
    404: {"description": "unknown channel, or the channel is not configured for the tenant"},
    413: {"description": "body larger than the limit"},
    503: {"description": "storage unavailable: the platform should retry (after `Retry-After` seconds)"},
}


_BODY_EXAMPLES: dict[str, Any] = {
    "description": "The platform's own body, byte for byte (signatures are checked on the raw bytes).",
    "content": {
        "application/json": {
            "examples": {
                "xiaohongshu": {"value": samples.xiaohongshu_lead(leads_id="L-1001", phone="138****0000")},
                "douyin": {"value": samples.douyin_follow(open_id="5bfa0218-x", log_id="202306151447300000")},
                "oceanengine": {
                    "value": samples.oceanengine_clue(message_id="m-7001", clue_id="7001", telephone="138****0000")
                },
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


def _acks() -> dict[str, Any]:
    """The success reply of each channel, as its adapter makes it: JSON for most, `success` as text for WeCom."""
    json_acks: dict[str, Any] = {}
    text_acks: dict[str, Any] = {}
    for name, adapter in sorted(ADAPTERS.items()):
        ack = adapter.ack()
        if ack.media_type == "application/json":
            json_acks[name] = {"value": orjson.loads(ack.body)}
        else:
            text_acks[name] = {"value": ack.body.decode()}
    return {
        "description": "Stored (or already stored): the acknowledgement the platform expects",
        "content": {"application/json": {"examples": json_acks}, "text/plain": {"examples": text_acks}},
    }


def _verifications() -> dict[int | str, dict[str, Any]]:
    """The GET replies, as each adapter makes them: Ocean Engine echoes its challenge, WeCom its decrypted
    `echostr` (shown as text: making one needs a signed, encrypted query), and the channels that verify no URL by
    GET answer 405."""
    challenge = WebhookRequest(body=b"", query={"event": "verify_webhook", "challenge": "1234567890"})
    echoed = ADAPTERS["oceanengine"].verify_get(challenge, {})
    refused = {
        name: {"value": orjson.loads(reply.body)}
        for name, adapter in sorted(ADAPTERS.items())
        if name != "wecom" and (reply := adapter.verify_get(challenge, {})).status == 405
    }
    return {
        200: {
            "description": "The URL is verified: the platform's challenge echoed back",
            "content": {
                "application/json": {"examples": {"oceanengine": {"value": orjson.loads(echoed.body)}}},
                "text/plain": {"examples": {"wecom": {"value": "5923404417914735617"}}},
            },
        },
        405: {
            "description": "The channel verifies no URL by GET",
            "content": {"application/json": {"examples": refused}},
        },
    }


def _reply(reply: Reply) -> Response:
    return Response(content=reply.body, status_code=reply.status, media_type=reply.media_type)


def storage_unavailable(exc: BaseException) -> HTTPException:
    """The 503 of any storage failure on the webhook path, whatever its class (logged with its cause)."""
    log.warning("webhook_storage_unavailable", error=repr(exc)[:300])
    return HTTPException(503, detail="storage unavailable, retry later", headers={"Retry-After": str(RETRY_AFTER_S)})


def refused(channel: str, reason: str) -> HTTPException:
    REFUSED_DELIVERIES.labels(channel).inc()
    return HTTPException(400, detail=f"the delivery cannot be stored: {reason}")


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
        app.state.ingest = ctx  # what the routes share, for tools and tests that drive the app in-process
        try:
            yield
        finally:
            ctx.webhook_writer = None
            await pool.close()

    router = APIRouter(tags=["webhooks"], lifespan=lifespan)
    limit = ctx.settings.max_body_bytes

    async def context_of(sessions: SessionFactory, tenant: str, channel: str) -> tuple[ChannelAdapter, Credentials]:
        adapter = ADAPTERS.get(channel)
        if adapter is None:
            raise HTTPException(404, detail=f"unknown channel {channel!r}")
        try:
            creds = await ctx.credentials.load(sessions, tenant=tenant, channel=channel)
        except Exception as exc:
            # A read of one row by a valid tenant and a known channel: nothing the caller sent can make it fail, so
            # whatever does (SQLAlchemy, the driver, the network, a timeout, the vault) is ours, and retried.
            raise storage_unavailable(exc) from exc
        if creds is None:
            raise HTTPException(404, detail=f"channel {channel!r} is not configured for this tenant")
        return adapter, creds

    async def accept(sessions: SessionFactory, delivery: Incoming) -> Reply:
        """Verify, store once (committed before this returns), and the platform's reply; HTTPException else."""
        tenant, channel = delivery.tenant, delivery.channel
        adapter, creds = await context_of(sessions, tenant, channel)
        incoming = WebhookRequest(body=delivery.body, headers=delivery.headers, query=delivery.query)
        headers = delivery.headers
        kept = {h: headers[h] for h in adapter.signature_headers if h in headers}
        try:
            adapter.verify(incoming, creds)
            check_fresh(adapter, incoming)
            challenge = adapter.challenge(incoming, creds)
            if challenge is not None:
                return challenge
            dedupe_key = adapter.dedupe_key(incoming, creds)
            reason = (
                unstorable(dedupe_key, where="the dedupe id")
                or unstorable(delivery.query, where="query")
                or unstorable(kept, where="headers")
                or adapter.unstorable(incoming, creds)
            )
        except BadSignature as exc:
            raise HTTPException(401, detail=str(exc)) from exc
        except Malformed as exc:
            raise HTTPException(400, detail=str(exc)) from exc
        if reason:
            raise refused(channel, reason)
        try:
            await ctx.webhook_writer.store(
                tenant=tenant,
                channel=channel,
                dedupe_key=dedupe_key,
                body=delivery.body,
                headers=kept,
                query=delivery.query,
            )
        except Unstorable as exc:
            raise refused(channel, str(exc)) from exc
        except StorageUnavailable as exc:
            raise storage_unavailable(exc) from exc
        return adapter.ack()

    max_age = ctx.settings.callback_max_age_s

    def check_fresh(adapter: ChannelAdapter, incoming: WebhookRequest) -> None:
        """A signed send time (WeCom's) must lie within ``callback_max_age_s`` of now, either way."""
        sent = adapter.signed_at(incoming)
        if sent is None:
            return
        skew = abs((incoming.received_at - sent).total_seconds())
        if skew > max_age:
            STALE_CALLBACKS.labels(adapter.name).inc()
            raise Malformed(f"the callback's timestamp is {skew:.0f} s from now, beyond the {max_age:.0f} s window")

    # The hot path: a plain ASGI route ahead of the documented one serves every POST (no dependency injection,
    # no Request/Response objects: a third of the api's CPU per delivery). Same checks, same replies.
    fast = WebhookEndpoint(accept, limit)
    router.routes.append(Route(WEBHOOK_PATH, endpoint=fast, methods=["POST"], include_in_schema=False))

    @router.post(
        WEBHOOK_PATH,
        responses={200: _acks(), **_RESPONSES},
        summary="Receive a channel webhook",
        openapi_extra={"requestBody": _BODY_EXAMPLES},
    )
    async def receive(tenant: TenantPath, channel: ChannelPath, request: Request) -> Response:
        """Verify the platform's signature on the raw body, store the delivery once, and acknowledge it."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, detail=f"body larger than {limit} bytes")
        body = await _read_limited(request, limit)
        headers = {k.lower(): v for k, v in request.headers.items()}
        delivery = Incoming(tenant, channel, headers, dict(request.query_params), body)
        return _reply(await accept(request.app.state.runtime.sessions, delivery))

    fast.route = router.routes[-1]

    @router.get(WEBHOOK_PATH, responses={**_verifications(), **_RESPONSES}, summary="Answer a URL verification")
    async def verify_url(tenant: TenantPath, channel: ChannelPath, request: Request) -> Response:
        """WeCom `echostr` (verified and decrypted) and the Ocean Engine `challenge` echo."""
        adapter, creds = await context_of(request.app.state.runtime.sessions, tenant, channel)
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


@dataclass(frozen=True, slots=True)
class Incoming:
    tenant: str
    channel: str
    headers: Mapping[str, str]
    """Lower-cased names."""
    query: dict[str, str]
    body: bytes


Accept = Callable[[SessionFactory, Incoming], Awaitable[Reply]]


class WebhookEndpoint:
    """``POST /v1/webhooks/{tenant}/{channel}`` as a plain ASGI app.

    Does by hand what the documented FastAPI route gets from the framework (path validation → 422 in the same
    shape, body size limit → 413, errors as HTTPException for the app's handlers), then replies with the bytes
    the adapter gives. ``route`` is the documented route: the request metrics are labelled with its template.
    """

    def __init__(self, accept: Accept, limit: int) -> None:
        self._accept = accept
        self._limit = limit
        self.route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.route is not None:
            scope["route"] = self.route
        params = scope["path_params"]
        tenant, channel = params["tenant"], params["channel"]
        _check_path(tenant, channel)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        limit = self._limit
        if declared and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, detail=f"body larger than {limit} bytes")
        body = await _receive_limited(receive, limit)
        if body is None:
            return  # the client went away: nothing stored, nobody to answer
        raw_query = scope.get("query_string") or b""
        query = dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)) if raw_query else {}
        sessions: SessionFactory = scope["app"].state.runtime.sessions
        reply = await self._accept(sessions, Incoming(tenant, channel, headers, query, body))
        media_type = reply.media_type
        if media_type.startswith("text/"):
            media_type += "; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (b"content-length", str(len(reply.body)).encode()),
                    (b"content-type", media_type.encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})


class _WebhookPath(BaseModel):
    """The documented route's path parameters, in the very types the route declares."""

    tenant: TenantPath
    channel: ChannelPath


def _check_path(tenant: str, channel: str) -> None:
    """The documented path constraints, checked by the same types and answered with the same 422 (by the app's
    validation handler) as the documented route."""
    try:
        _WebhookPath(tenant=tenant, channel=channel)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("path", *e["loc"])} for e in error.errors(include_url=False, include_context=False)]
        ) from None


async def _receive_limited(receive: Receive, limit: int) -> bytes | None:
    """The whole request body (413 past ``limit``), or None when the client disconnected."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, detail=f"body larger than {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
