"""The plain ASGI webhook route answers exactly as the documented FastAPI route does, and stores the same."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.routing import Route

from siyu_ingest import samples
from siyu_ingest.api.webhooks import WEBHOOK_PATH, WebhookEndpoint
from siyu_shared.metrics import HTTP_REQUESTS

from .conftest import Ingest

pytestmark = pytest.mark.integration


def _webhook_routes(app: FastAPI) -> tuple[Route, APIRoute]:
    found: list[object] = []
    for included in app.router.routes:
        router = getattr(included, "original_router", None)
        found += [r for r in getattr(router, "routes", ()) if getattr(r, "path", None) == WEBHOOK_PATH]
    fast = next(r for r in found if isinstance(r, Route) and isinstance(r.endpoint, WebhookEndpoint))
    documented = next(r for r in found if isinstance(r, APIRoute) and "POST" in r.methods)
    assert found.index(fast) < found.index(documented), "the fast route must be matched first"
    return fast, documented


def _documented_only(app: FastAPI, documented: APIRoute) -> FastAPI:
    """An app that serves POSTs with the documented FastAPI route (same context, same 422 handler)."""
    probe = FastAPI()
    probe.router.routes.append(documented)
    probe.state.runtime = app.state.runtime
    probe.add_exception_handler(RequestValidationError, app.exception_handlers[RequestValidationError])
    return probe


def _answer(response: httpx.Response) -> tuple[int, str, bytes]:
    return response.status_code, response.headers.get("content-type", ""), response.content


async def test_fast_path_replies_like_the_documented_route(ingest: Ingest) -> None:
    _, documented = _webhook_routes(ingest.app)
    probe = _documented_only(ingest.app, documented)
    lead = samples.xiaohongshu_lead(leads_id="FP-1", phone="13800138000")
    cases: list[tuple[str, str, samples.Signed]] = [
        ("valid", "xiaohongshu", samples.xiaohongshu(lead)),
        ("bad signature", "xiaohongshu", samples.xiaohongshu(lead, token="wrong")),
        ("malformed", "xiaohongshu", samples.xiaohongshu({"data": {"no": "leads_id"}})),
        ("not json", "tmall", samples.sign_raw("tmall", b"{not json")),
        ("challenge", "douyin", samples.douyin({"event": "verify_webhook", "content": {"challenge": 7}})),
        ("text reply", "wecom", samples.wecom(samples.wecom_add_contact(external_userid="wm-fp"))),
        ("query kept", "oceanengine", (b"", {}, {"event": "verify_webhook", "challenge": "998"})),
        ("unknown channel", "kuaishou", samples.sign_raw("douyin", b"{}")),
        ("NUL in the channel", "dou%00yin", samples.sign_raw("douyin", b"{}")),
        ("long channel", "c" * 33, samples.sign_raw("douyin", b"{}")),
        ("NUL in the query", "xiaohongshu", (*samples.xiaohongshu(lead)[:2], {"utm": "a\x00"})),
        ("oversize", "doudian", (b"[" + b" " * 2_000_000 + b"]", {}, {})),
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=probe), base_url="http://probe") as slow:
        for name, channel, (body, headers, query) in cases:
            for tenant in (ingest.tenant, "no-such-tenant", "bad tenant!", "t" * 65, "Acme.CN", "a%00b"):
                url = f"/v1/webhooks/{tenant}/{channel}"
                fast_answer = await ingest.http.post(url, content=body, headers=headers, params=query)
                slow_answer = await slow.post(url, content=body, headers=headers, params=query)
                assert _answer(fast_answer) == _answer(slow_answer), (name, tenant)
    # the valid delivery was stored once (the second post was a duplicate), the wecom one once
    stored = await ingest.deliveries()
    assert sorted(d["channel"] for d in stored) == ["wecom", "xiaohongshu"]


async def test_fast_path_requests_are_counted_under_the_route_template(ingest: Ingest) -> None:
    def count() -> float:
        return HTTP_REQUESTS.labels("ingest", "POST", WEBHOOK_PATH, "200")._value.get()

    before = count()
    lead = samples.xiaohongshu_lead(leads_id="FP-2", phone="13800138001")
    assert (await ingest.post("xiaohongshu", samples.xiaohongshu(lead))).status_code == 200
    assert count() == before + 1


async def test_fast_path_streamed_body_over_the_limit_is_413_without_content_length(ingest: Ingest) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(3):
            yield b" " * 600_000

    response = await ingest.http.post(f"/v1/webhooks/{ingest.tenant}/doudian", content=chunks())
    assert response.status_code == 413
