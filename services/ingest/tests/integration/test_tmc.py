"""The TMC consumer role: consume from the TOP gateway, store, confirm; same parser as relayed messages."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from fastapi import FastAPI, HTTPException, Request

from siyu_devstack.testing import eventually
from siyu_ingest import samples
from siyu_ingest.adapters.tmc import top_sign
from siyu_shared.events.topics import Topic

from .conftest import Ingest
from .test_identity import serving

pytestmark = pytest.mark.integration

APP_KEY, APP_SECRET = "12497914", "tmc-app-secret"


def top_gateway(queue: list[dict[str, Any]], confirmed: list[str]) -> FastAPI:
    """The TOP gateway as far as TMC polling uses it; it checks the request signature like the real one."""
    api = FastAPI()

    @api.post("/router/rest")
    async def rest(request: Request) -> dict[str, Any]:
        params = dict(parse_qsl((await request.body()).decode()))
        sign, method = params.pop("sign", ""), params.get("method")
        if params.get("app_key") != APP_KEY or top_sign(params, APP_SECRET) != sign:
            raise HTTPException(400, "bad sign")
        if method == "taobao.tmc.messages.consume":
            batch = [m for m in queue if m["id"] not in confirmed]
            return {"tmc_messages_consume_response": {"messages": {"tmc_message": batch}}}
        if method == "taobao.tmc.messages.confirm":
            confirmed.extend(params["s_message_ids"].split(","))
            return {"tmc_messages_confirm_response": {"is_success": True}}
        raise HTTPException(400, "unknown method")

    return api


async def test_tmc_feed_is_consumed_stored_confirmed_and_parsed_like_relayed_messages(ingest: Ingest) -> None:
    tid = "3000000000555"
    queue = [
        samples.tmall_message(message_id="tmc-a", topic="taobao_trade_TradeBuyerPay", tid=tid, buyer="AAHtmc"),
        samples.tmall_message(message_id="tmc-b", topic="taobao_trade_TradeSuccess", tid=tid, buyer="AAHtmc"),
        # Never storable: refused alone (and confirmed, or it would come back and fail every batch).
        samples.tmall_message(message_id="tmc-\x00", topic="taobao_trade_TradeSuccess", tid=tid, buyer="AAHtmc"),
        {
            **samples.tmall_message(message_id="tmc-big", topic="taobao_trade_TradeSuccess", tid=tid, buyer="b"),
            "n": 2**70,
        },
    ]
    confirmed: list[str] = []
    async with serving(top_gateway(queue, confirmed)) as base:
        creds = {
            "relay_secret": samples.CREDENTIALS["tmall"]["relay_secret"],
            "tmc_app_key": APP_KEY,
            "tmc_app_secret": APP_SECRET,
        }
        made = await ingest.http.put(
            f"/v1/tenants/{ingest.tenant}/channels/tmall",
            json={"secrets": creds, "options": {"tmc_gateway": f"{base}/router/rest"}},
            headers=ingest.auth,
        )
        assert made.status_code == 200
        events = await eventually(lambda: _two(ingest))
        assert sorted(confirmed) == ["tmc-\x00", "tmc-a", "tmc-b", "tmc-big"]
    assert [e["type"] for e in events] == ["siyu.order.paid", "siyu.order.completed"]
    # The same message relayed over HTTP as well: deduplicated on the TMC id.
    assert (await ingest.post("tmall", samples.tmall(queue[0]))).status_code == 200
    await eventually(ingest.settled)
    assert len(await ingest.events(Topic.ORDERS)) == 2


async def _two(ingest: Ingest) -> list[dict[str, Any]] | None:
    events = await ingest.events(Topic.ORDERS)
    return events if len(events) >= 2 else None
