"""Every channel end to end: signed webhook → durable delivery → the right events on the right topics, once."""

from __future__ import annotations

import asyncio

import pytest

from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually
from siyu_ingest import samples
from siyu_ingest.__main__ import reprocess_main
from siyu_shared.events.topics import Topic

from .conftest import Ingest

pytestmark = pytest.mark.integration


async def test_xiaohongshu_lead_valid_duplicate_bad_signature_and_malformed(ingest: Ingest) -> None:
    lead = samples.xiaohongshu_lead(leads_id="L-1001", phone="13800138000", account_id="xhs-kol-9")
    first = await ingest.post("xiaohongshu", samples.xiaohongshu(lead))
    assert (first.status_code, first.json()) == (200, {"code": 0, "msg": "success"})
    again = await ingest.post("xiaohongshu", samples.xiaohongshu(lead))
    assert (again.status_code, again.json()) == (200, {"code": 0, "msg": "success"})
    forged = await ingest.post("xiaohongshu", samples.xiaohongshu(lead, token="wrong"))
    assert forged.status_code == 401
    malformed = await ingest.post("xiaohongshu", samples.xiaohongshu({"data": {"no": "leads_id"}}))
    assert malformed.status_code == 400
    assert "leads_id" in malformed.json()["detail"]
    await eventually(ingest.settled)
    leads = await eventually(lambda: ingest.events(Topic.LEADS))
    assert len(leads) == 1
    captured = leads[0]
    assert captured["type"] == "siyu.lead.captured"
    assert captured["subject"] == captured["data"]["person_id"]
    data = captured["data"]
    assert data["lead_id"] == "xiaohongshu:L-1001"
    assert data["has_phone"] is True
    assert data["source"]["account_kind"] == "kol"
    assert data["source"]["campaign_id"] == "1"
    assert data["attributes"]["skin_type"] == "干皮"
    assert data["occurred_at"].startswith("2024-07-24T05:40:00")  # 13:40 Shanghai
    assert "13800138000" not in str(captured) and "张三" not in str(captured)
    assert len(await ingest.deliveries()) == 1


async def test_xiaohongshu_masked_phone_is_kept_partial_and_never_matched(ingest: Ingest) -> None:
    for leads_id in ("M-1", "M-2"):
        lead = samples.xiaohongshu_lead(leads_id=leads_id, phone="138****0000")
        assert (await ingest.post("xiaohongshu", samples.xiaohongshu(lead))).status_code == 200
    leads = await eventually(lambda: _at_least(ingest, Topic.LEADS, 2))
    assert {e["data"]["has_phone"] for e in leads} == {False}
    assert len({e["data"]["person_id"] for e in leads}) == 2  # two masked numbers are not one person


async def test_douyin_dm_object_and_string_content_phone_in_text_and_challenge(ingest: Ingest) -> None:
    challenge = await ingest.post(
        "douyin", samples.douyin({"event": "verify_webhook", "client_key": "", "content": {"challenge": 12345}})
    )
    assert challenge.json() == {"challenge": 12345}
    dm = samples.douyin_dm(open_id="ac6479a5-d7a6", text="我的电话13800000000 谢谢", message_id="@srv1")
    as_string = samples.douyin_dm(open_id="ac6479a5-d7a6", text="还在吗", message_id="@srv2", content_as_string=True)
    follow = samples.douyin_follow(open_id="5bfa0218-x", log_id="202306151447300000000000005369C6D")
    for payload, msg_id in ((dm, "m-1"), (dm, "m-1"), (as_string, "m-2"), (follow, None)):
        response = await ingest.post("douyin", samples.douyin(payload, msg_id=msg_id))
        assert response.status_code == 200, response.text
    assert (await ingest.post("douyin", samples.douyin(dm, msg_id="m-3", secret="nope"))).status_code == 401
    assert (await ingest.post("douyin", (b"{not json", *samples.douyin({})[1:]))).status_code in (400, 401)
    leads = await eventually(lambda: _at_least(ingest, Topic.LEADS, 3))
    assert len(leads) == 3
    by_kind = {e["data"]["lead_id"]: e["data"] for e in leads}
    assert by_kind["douyin:m-1"]["has_phone"] is True
    assert by_kind["douyin:m-1"]["kind"] == "private_message"
    assert by_kind["douyin:m-2"]["person_id"] == by_kind["douyin:m-1"]["person_id"]  # same open_id
    assert by_kind["douyin:202306151447300000000000005369C6D"]["kind"] == "follow"


async def test_wecom_echostr_add_friend_group_join_and_removal(ingest: Ingest) -> None:
    echo = await ingest.http.get(f"/v1/webhooks/{ingest.tenant}/wecom", params=samples.wecom_echo("echo-12345"))
    assert (echo.status_code, echo.text) == (200, "echo-12345")
    bad_echo = {**samples.wecom_echo("x"), "msg_signature": "0" * 40}
    assert (await ingest.http.get(f"/v1/webhooks/{ingest.tenant}/wecom", params=bad_echo)).status_code == 401
    added = samples.wecom(samples.wecom_add_contact(external_userid="wmEXT1"))
    response = await ingest.post("wecom", added)
    assert (response.status_code, response.text) == (200, "success")
    assert (await ingest.post("wecom", added)).text == "success"  # a retry: same reply, no second event
    # A group join lists staff (lisi) beside customers: only the customer is a contact event.
    joined = samples.wecom_group_join(
        external_userids=["wmEXT1", "lisi"], chat_id="wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ", create_time=1403610600
    )
    assert (await ingest.post("wecom", samples.wecom(joined))).status_code == 200
    removed = samples.wecom_contact_removed(external_userid="wmEXT1", create_time=1403610700)
    assert (await ingest.post("wecom", samples.wecom(removed))).status_code == 200
    forged = samples.wecom(samples.wecom_add_contact(external_userid="wmEXT2"), token="other")
    assert (await ingest.post("wecom", forged)).status_code == 401
    assert (await ingest.post("wecom", (b"<xml><nope/>", {}, {}))).status_code in (400, 401)
    events = await eventually(lambda: _at_least(ingest, Topic.CONTACTS, 3))
    assert [e["type"] for e in events] == ["siyu.contact.added", "siyu.group.joined", "siyu.contact.removed"]
    assert len({e["data"]["person_id"] for e in events}) == 1
    assert events[0]["data"]["source"]["wecom_state"] == "xhs_note_01"
    assert events[0]["data"]["welcome_code_present"] is True
    assert events[1]["data"]["join_scene"] == 3
    assert events[2]["data"]["removed_by"] == "customer"


async def test_tmall_refund_before_payment_still_gives_paid_then_refunded_once(ingest: Ingest) -> None:
    tid = "3000000000001"
    refund = samples.tmall_message(
        message_id="tmc-2",
        topic="taobao_refund_RefundSuccess",
        tid=tid,
        buyer="AAHbuyer1",
        pub_time="2024-01-02 09:00:00",
        extra={"refund_id": "R-1", "refund_fee": "99.00"},
    )
    paid = samples.tmall_message(message_id="tmc-1", topic="taobao_trade_TradeBuyerPay", tid=tid, buyer="AAHbuyer1")
    for message in (refund, paid, paid, refund):
        response = await ingest.post("tmall", samples.tmall(message))
        assert (response.status_code, response.json()) == (200, {"code": 0, "msg": "success"})
    assert (await ingest.post("tmall", samples.tmall(paid, secret="x"))).status_code == 401
    events = await eventually(lambda: _at_least(ingest, Topic.ORDERS, 2))
    assert [e["type"] for e in events] == ["siyu.order.paid", "siyu.order.refunded"]
    assert events[0]["data"]["amount_fen"] == 9900
    assert events[0]["data"]["paid_at"].startswith("2024-01-01T04:00:00")
    assert events[1]["data"]["full"] is True
    assert events[1]["data"]["amount_fen"] == 9900
    assert events[0]["subject"] == events[1]["subject"]


async def test_tmall_partial_refunds_completion_and_a_failed_delivery_that_is_reprocessed(
    ingest: Ingest, migrated: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tid = "3000000000002"
    paid = samples.tmall_message(
        message_id="p", topic="taobao_trade_TradeBuyerPay", tid=tid, buyer="AAHb2", payment="100.50"
    )
    partial = samples.tmall_message(
        message_id="r1",
        topic="taobao_refund_RefundSuccess",
        tid=tid,
        buyer="AAHb2",
        extra={"refund_id": "R1", "refund_fee": "30.25"},
    )
    broken = samples.tmall_message(
        message_id="r2",
        topic="taobao_refund_RefundSuccess",
        tid=tid,
        buyer="AAHb2",
        extra={"refund_id": "R2", "refund_fee": "abc"},
    )
    done = samples.tmall_message(message_id="s", topic="taobao_trade_TradeSuccess", tid=tid, buyer="AAHb2")
    for message in (paid, partial, broken, done):
        assert (await ingest.post("tmall", samples.tmall(message))).status_code == 200
    failed = await eventually(lambda: ingest.deliveries("failed"))
    assert len(failed) == 1 and "abc" in failed[0]["error"]
    events = await eventually(lambda: _at_least(ingest, Topic.ORDERS, 3))
    assert [e["type"] for e in events] == ["siyu.order.paid", "siyu.order.refunded", "siyu.order.completed"]
    assert events[1]["data"]["amount_fen"] == 3025 and events[1]["data"]["full"] is False
    again = await ingest.http.post(
        f"/v1/tenants/{ingest.tenant}/deliveries/{failed[0]['id']}/reprocess", headers=ingest.auth
    )
    assert again.status_code == 202 and again.json() == {"requeued": 1}
    # Still malformed: it fails again, visible with its error, and nothing was emitted for it.
    await eventually(lambda: ingest.deliveries("failed"))
    # The same through the command line.
    monkeypatch.setenv("INGEST_DATABASE_URL", migrated.service_dsn("ingest"))
    monkeypatch.setenv("INGEST_KAFKA_BOOTSTRAP_SERVERS", migrated.bootstrap_servers)
    assert await asyncio.to_thread(reprocess_main, ["--tenant", ingest.tenant]) == 0
    assert "requeued 1 failed deliveries" in capsys.readouterr().out
    await eventually(lambda: ingest.deliveries("failed"))
    assert len(await ingest.events(Topic.ORDERS)) == 3


async def test_oceanengine_lead_and_challenges(ingest: Ingest) -> None:
    get = await ingest.http.get(
        f"/v1/webhooks/{ingest.tenant}/oceanengine", params={"event": "verify_webhook", "challenge": "998"}
    )
    assert get.json()["challenge"] == 998 and get.json()["BaseResp"]["StatusCode"] == 200
    clue = samples.oceanengine_clue(message_id="oe-1", clue_id="7200000000000000001", telephone="+86 139 1234 5678")
    for _ in range(2):
        response = await ingest.post("oceanengine", samples.oceanengine(clue))
        assert response.json()["BaseResp"]["StatusCode"] == 200
    assert (await ingest.post("oceanengine", samples.oceanengine(clue, secret="bad"))).status_code == 401
    leads = await eventually(lambda: ingest.events(Topic.LEADS))
    assert len(leads) == 1
    assert leads[0]["data"]["source"]["promotion_id"] == "7300000000000004"
    assert leads[0]["data"]["has_phone"] is True


async def test_doudian_array_verification_paid_refund_and_unknown_channel(ingest: Ingest) -> None:
    verify = await ingest.post("doudian", samples.doudian([{"tag": "0", "msg_id": "0", "data": "{}"}]))
    assert verify.json() == {"code": 0, "msg": "success"}
    refund_first = samples.doudian([samples.doudian_message(tag="206", msg_id="d2", p_id=4705288465508532862)])
    paid = samples.doudian(
        [samples.doudian_message(tag="110", msg_id="d1", p_id=4705288465508532862, data_as_string=False)]
    )
    for signed in (refund_first, paid, paid):
        assert (await ingest.post("doudian", signed)).status_code == 200
    assert (await ingest.post("doudian", samples.doudian([{"tag": "110"}], app_key="x"))).status_code == 401
    assert (await ingest.post("kuaishou", samples.doudian([]))).status_code == 404
    huge = (b"[" + b" " * 2_000_000 + b"]", {}, {})
    assert (await ingest.post("doudian", huge)).status_code == 413
    events = await eventually(lambda: _at_least(ingest, Topic.ORDERS, 2))
    assert [e["type"] for e in events] == ["siyu.order.paid", "siyu.order.refunded"]
    assert events[0]["data"]["amount_fen"] == 2990 and events[1]["data"]["full"] is True


async def _at_least(ingest: Ingest, topic: Topic, n: int) -> list[dict[str, object]] | None:
    events = await ingest.events(topic)
    return events if len(events) >= n else None
