"""The WeCom simulator answers journey's sender as WeCom does and records every message it was asked to send."""

from __future__ import annotations

import httpx
import pytest

from siyu_devstack.demo.wecom_sim import ACCESS_TOKEN, CORP_ID, CORP_SECRET, SimContact, serving

LILEI = SimContact("wmLiLei", "xwz_01", "李雷", remark_mobiles=("13800138000",))


async def test_every_send_is_recorded_even_the_same_message_twice() -> None:
    with serving({"wmLiLei": LILEI}) as (sim, base):
        async with httpx.AsyncClient(base_url=base) as http:
            body = {
                "chat_type": "single",
                "sender": "xwz_01",
                "external_userid": ["wmLiLei"],
                "text": {"content": "你好"},
            }
            first, second = [
                (
                    await http.post(
                        "/cgi-bin/externalcontact/add_msg_template", params={"access_token": ACCESS_TOKEN}, json=body
                    )
                ).json()
                for _ in range(2)
            ]
            refused = await http.post(
                "/cgi-bin/externalcontact/add_msg_template", params={"access_token": "stale"}, json=body
            )
        assert first["errcode"] == second["errcode"] == 0 and first["fail_list"] == []
        assert first["msgid"] != second["msgid"]  # no idempotency key: two calls are two messages
        assert refused.json()["errcode"] == 40014
        sent = sim.messages()
        assert [(m.sender, m.external_userids, m.content, m.delivered_to) for m in sent] == [
            ("xwz_01", ("wmLiLei",), "你好", ("wmLiLei",))
        ] * 2
        assert sim.messages(since=1) == sent[1:]


async def test_a_recipient_who_is_not_the_senders_contact_is_in_the_fail_list() -> None:
    with serving({"wmLiLei": LILEI}) as (sim, base):
        async with httpx.AsyncClient(base_url=base) as http:
            reply = await http.post(
                "/cgi-bin/externalcontact/add_msg_template",
                params={"access_token": ACCESS_TOKEN},
                json={
                    "chat_type": "single",
                    "sender": "xwz_02",
                    "external_userid": ["wmLiLei", "person-123"],
                    "text": {"content": "hi"},
                },
            )
        assert reply.json()["errcode"] == 0
        assert sorted(reply.json()["fail_list"]) == ["person-123", "wmLiLei"]
        (message,) = sim.messages()
        assert message.delivered_to == ()


async def test_journeys_wecom_sender_delivers_through_it() -> None:
    wecom = pytest.importorskip("siyu_journey.adapters.senders.wecom")
    senders = pytest.importorskip("siyu_journey.adapters.senders")
    with serving({"wmLiLei": LILEI}) as (sim, base):
        sender = wecom.WeComSender(base_url=base, corp_id=CORP_ID, corp_secret=CORP_SECRET)
        try:
            touch = senders.Outgoing("t1", "acme", "p1", "wecom_1v1", "xwz_01", "小完子", "你好呀", "wmLiLei")
            assert await sender.send([touch]) == [senders.Delivered()]
        finally:
            await sender.aclose()
    (message,) = sim.messages()
    assert (message.chat_type, message.sender, message.delivered_to, message.content) == (
        "single",
        "xwz_01",
        ("wmLiLei",),
        "你好呀",
    )
