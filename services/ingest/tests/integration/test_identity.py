"""One person behind many identifiers: Xiaohongshu phone → WeCom remark mobile → Tmall buyer, one merge."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from siyu_devstack.testing import eventually
from siyu_ingest import samples
from siyu_shared.events.topics import Topic

from .conftest import Ingest

pytestmark = pytest.mark.integration

PHONE = "13800138000"


def wecom_api(remark_mobiles: dict[str, list[str]]) -> FastAPI:
    """WeCom's server API as far as ingest uses it (gettoken, externalcontact/get), on a real socket."""
    api = FastAPI()

    @api.get("/cgi-bin/gettoken")
    async def gettoken(corpid: str, corpsecret: str) -> dict[str, Any]:
        if corpsecret != "corp-secret":
            return {"errcode": 40001, "errmsg": "invalid credential"}
        return {"errcode": 0, "errmsg": "ok", "access_token": "ACCESS_TOKEN", "expires_in": 7200}

    @api.get("/cgi-bin/externalcontact/get")
    async def contact(access_token: str, external_userid: str) -> dict[str, Any]:
        return {
            "errcode": 0,
            "errmsg": "ok",
            "external_contact": {
                "external_userid": external_userid,
                "name": "李雷",
                "type": 1,
                "unionid": f"ozynqsulJFCZ2z1aYeS8h-{external_userid}",
            },
            "follow_user": [
                {
                    "userid": "zhangsan",
                    "remark": "李雷-干皮",
                    "remark_mobiles": remark_mobiles.get(external_userid, []),
                    "state": "xhs_note_01",
                    "createtime": 1403610513,
                }
            ],
        }

    return api


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: asyncio.sleep(0, result=server.started), timeout_s=5, interval_s=0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def configure_wecom_api(ingest: Ingest, base: str) -> None:
    wecom = samples.CREDENTIALS["wecom"]
    response = await ingest.http.put(
        f"/v1/tenants/{ingest.tenant}/channels/wecom",
        json={"secrets": {**wecom, "corp_secret": "corp-secret"}, "options": {"api_base": base}},
        headers=ingest.auth,
    )
    assert response.status_code == 200, response.text


async def test_xiaohongshu_then_wecom_then_tmall_is_one_person_with_one_merge(ingest: Ingest) -> None:
    async with serving(wecom_api({"wmLiLei": ["+86 138-0013-8000"]})) as base:
        await configure_wecom_api(ingest, base)
        lead = samples.xiaohongshu_lead(leads_id="ID-1", phone=PHONE)
        assert (await ingest.post("xiaohongshu", samples.xiaohongshu(lead))).status_code == 200
        await eventually(ingest.settled)
        added = samples.wecom(samples.wecom_add_contact(external_userid="wmLiLei"))
        assert (await ingest.post("wecom", added)).status_code == 200
        merged = await eventually(lambda: ingest.events(Topic.PERSONS))
        order = samples.tmall_message(
            message_id="tmc-id-1",
            topic="taobao_trade_TradeBuyerPay",
            tid="3000000000009",
            buyer="AAHliLei",
            extra={"receiver_mobile": PHONE},
        )
        assert (await ingest.post("tmall", samples.tmall(order))).status_code == 200
        # Replays of everything: no new person, no second merge.
        assert (await ingest.post("wecom", added)).status_code == 200
        assert (await ingest.post("xiaohongshu", samples.xiaohongshu(lead))).status_code == 200
        paid = await eventually(lambda: ingest.events(Topic.ORDERS))
        await eventually(ingest.settled)

    lead_person = (await ingest.events(Topic.LEADS))[0]["data"]["person_id"]
    contact = (await ingest.events(Topic.CONTACTS))[0]["data"]
    persons = await ingest.events(Topic.PERSONS)
    assert len(persons) == 1 and persons == merged
    merge = persons[0]
    assert merge["type"] == "siyu.person.merged"
    assert merge["data"]["survivor_id"] == lead_person  # the oldest person survives
    assert merge["data"]["merged_ids"] == [contact["person_id"]]
    assert merge["data"]["reason"] == "phone"
    assert paid[0]["data"]["person_id"] == lead_person
    assert paid[0]["subject"] == lead_person
    folded = await ingest.http.get(f"/v1/tenants/{ingest.tenant}/persons/{contact['person_id']}", headers=ingest.auth)
    assert folded.json()["merged_into"] == lead_person
    survivor = await ingest.http.get(f"/v1/tenants/{ingest.tenant}/persons/{lead_person}", headers=ingest.auth)
    assert survivor.json()["identifiers"] == {"phone": 1, "wecom_external_userid": 1, "unionid": 1, "taobao_ouid": 1}
    assert PHONE not in str(await ingest.deliveries())
    # An internal tool finds the surviving person by any of the identifiers, in the form its channel gives it.
    lookup = f"/v1/tenants/{ingest.tenant}/persons/lookup"
    for kind, value in [
        ("wecom_external_userid", "wmLiLei"),
        ("phone", "+86 138 0013 8000"),
        ("taobao_ouid", "AAHliLei"),
    ]:
        found = await ingest.http.post(lookup, json={"kind": kind, "value": value}, headers=ingest.auth)
        assert (found.status_code, found.json()["person_id"]) == (200, lead_person), (kind, found.text)
        assert PHONE not in found.text
    masked = await ingest.http.post(lookup, json={"kind": "phone", "value": "138****8000"}, headers=ingest.auth)
    assert masked.status_code == 422 and "masked" in masked.json()["detail"][0]["msg"]
    unknown = await ingest.http.post(lookup, json={"kind": "taobao_ouid", "value": "AAHnobody"}, headers=ingest.auth)
    assert unknown.status_code == 404
    bad_kind = await ingest.http.post(lookup, json={"kind": "email", "value": "a@b.c"}, headers=ingest.auth)
    assert bad_kind.status_code == 422
    elsewhere = lookup.replace(ingest.tenant, "another-brand")
    denied = await ingest.http.post(elsewhere, json={"kind": "taobao_ouid", "value": "AAHliLei"}, headers=ingest.auth)
    assert denied.status_code == 403


async def test_merge_chains_resolve_to_one_survivor(ingest: Ingest) -> None:
    """A (phone P) ← B (WeCom, remark P); then C (Douyin open_id) writes P and B's unionid: C folds into A."""
    async with serving(wecom_api({"wmB": [PHONE]})) as base:
        await configure_wecom_api(ingest, base)
        lead = samples.xiaohongshu_lead(leads_id="CH-1", phone=PHONE)
        assert (await ingest.post("xiaohongshu", samples.xiaohongshu(lead))).status_code == 200
        await eventually(ingest.settled)
        added = samples.wecom(samples.wecom_add_contact(external_userid="wmB"))
        assert (await ingest.post("wecom", added)).status_code == 200
        await eventually(lambda: ingest.events(Topic.PERSONS))
    quiet = samples.douyin_dm(open_id="dy-C", text="你好", message_id="@c1")
    assert (await ingest.post("douyin", samples.douyin(quiet, msg_id="c1"))).status_code == 200
    await eventually(ingest.settled)
    told = samples.douyin_dm(open_id="dy-C", text=f"加我 {PHONE}", message_id="@c2")
    assert (await ingest.post("douyin", samples.douyin(told, msg_id="c2"))).status_code == 200
    persons = await eventually(lambda: _two(ingest))
    survivor = persons[0]["data"]["survivor_id"]
    assert {p["data"]["survivor_id"] for p in persons} == {survivor}
    leads = {e["data"]["lead_id"]: e["data"] for e in await ingest.events(Topic.LEADS)}
    assert leads["douyin:c2"]["person_id"] == survivor
    c_person = leads["douyin:c1"]["person_id"]
    assert persons[1]["data"]["merged_ids"] == [c_person]


async def _two(ingest: Ingest) -> list[dict[str, Any]] | None:
    events = await ingest.events(Topic.PERSONS)
    return events if len(events) >= 2 else None
