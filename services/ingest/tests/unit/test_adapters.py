"""Channel adapters on the platforms' own payloads, and a fuzz run: nothing but Malformed/BadSignature escapes."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu_ingest import samples
from siyu_ingest.adapters.channels import ADAPTERS, wecom_crypto
from siyu_ingest.adapters.channels.base import WebhookRequest
from siyu_ingest.domain.errors import BadSignature, Malformed
from siyu_ingest.domain.models import ContactChange, GroupChange, Lead, OrderChange

CREDS = samples.CREDENTIALS


def request(signed: samples.Signed) -> WebhookRequest:
    body, headers, query = signed
    return WebhookRequest(body=body, headers={k.lower(): v for k, v in headers.items()}, query=query)


def test_douyin_dm_with_content_as_object_or_string_gives_the_same_lead() -> None:
    adapter = ADAPTERS["douyin"]
    leads = []
    for as_string in (False, True):
        payload = samples.douyin_dm(
            open_id="oid", text="电话 13800000000", message_id="@m", content_as_string=as_string
        )
        incoming = request(samples.douyin(payload))
        adapter.verify(incoming, CREDS["douyin"])
        assert adapter.dedupe_key(incoming, CREDS["douyin"]) == "@m"
        (lead,) = adapter.parse(incoming, CREDS["douyin"])
        assert isinstance(lead, Lead)
        leads.append(lead)
    assert leads[0] == leads[1]
    assert {i.kind for i in leads[0].identifiers} == {"douyin_open_id", "phone"}


def test_xiaohongshu_kol_account_and_masked_phone() -> None:
    incoming = request(
        samples.xiaohongshu(samples.xiaohongshu_lead(leads_id="x", phone="138****0000", account_id="xhs-kol-9"))
    )
    (lead,) = ADAPTERS["xiaohongshu"].parse(incoming, CREDS["xiaohongshu"])
    assert isinstance(lead, Lead)
    assert lead.source.account_kind == "kol"
    assert lead.source.partner_id == "xhs-kol-9"  # the KOL's own account earns the source credit
    assert lead.partial_phone == "138****0000" and not lead.has_phone
    assert lead.name == "张三"
    assert all(i.kind != "phone" for i in lead.identifiers)


def test_xiaohongshu_partner_named_in_the_push_wins_and_enterprise_has_none() -> None:
    named = samples.xiaohongshu_lead(leads_id="y", phone="13800138000", account_id="xhs-ent-1")
    named["data"]["kol_user_id"] = "kol-777"
    (lead,) = ADAPTERS["xiaohongshu"].parse(request(samples.xiaohongshu(named)), CREDS["xiaohongshu"])
    assert isinstance(lead, Lead) and lead.source.partner_id == "kol-777"
    plain = samples.xiaohongshu_lead(leads_id="z", phone="13800138000", account_id="xhs-ent-1")
    (lead,) = ADAPTERS["xiaohongshu"].parse(request(samples.xiaohongshu(plain)), CREDS["xiaohongshu"])
    assert isinstance(lead, Lead) and lead.source.account_kind == "enterprise" and lead.source.partner_id is None


def test_wecom_round_trip_and_wrong_corp() -> None:
    adapter = ADAPTERS["wecom"]
    incoming = request(samples.wecom(samples.wecom_add_contact(external_userid="wmX")))
    adapter.verify(incoming, CREDS["wecom"])
    (contact,) = adapter.parse(incoming, CREDS["wecom"])
    assert isinstance(contact, ContactChange) and contact.added and contact.source.wecom_state == "xhs_note_01"
    with pytest.raises(BadSignature):
        adapter.parse(incoming, {**CREDS["wecom"], "corp_id": "ww_other"})


def test_wecom_group_members_only_external() -> None:
    xml = samples.wecom_xml(
        {
            "CreateTime": 1,
            "Event": "change_external_chat",
            "ChatId": "wr1",
            "ChangeType": "update",
            "UpdateDetail": "del_member",
            "QuitScene": 1,
            "MemChangeList": ["wmA", "staff1", "woB"],
        }
    )
    facts = ADAPTERS["wecom"].parse(request(samples.wecom(xml)), CREDS["wecom"])
    assert [(f.external_userid, f.joined, f.scene) for f in facts if isinstance(f, GroupChange)] == [
        ("wmA", False, 1),
        ("woB", False, 1),
    ]


def test_tmall_and_doudian_orders() -> None:
    paid = samples.tmall_message(
        message_id="1", topic="taobao_trade_TradeBuyerPay", tid="77", buyer="AAH", payment="12.34"
    )
    (change,) = ADAPTERS["tmall"].parse(request(samples.tmall(paid)), CREDS["tmall"])
    assert isinstance(change, OrderChange) and (change.kind, change.amount_fen, change.order_id) == (
        "paid",
        1234,
        "tmall:77",
    )
    created = samples.tmall_message(message_id="2", topic="taobao_trade_TradeCreate", tid="77", buyer="AAH")
    assert ADAPTERS["tmall"].parse(request(samples.tmall(created)), CREDS["tmall"]) == []
    signed = samples.doudian(
        [samples.doudian_message(tag="110", msg_id="a", p_id=9), samples.doudian_message(tag="206", msg_id="b", p_id=9)]
    )
    facts = ADAPTERS["doudian"].parse(request(signed), CREDS["doudian"])
    assert [(f.kind, f.amount_fen) for f in facts if isinstance(f, OrderChange)] == [("paid", 2990), ("refunded", 2990)]
    assert ADAPTERS["doudian"].dedupe_key(request(signed), CREDS["doudian"]) == "a,b"


sign = samples.sign_raw


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "event",
        "content",
        "data",
        "leads_id",
        "id",
        "topic",
        "tid",
        "tag",
        "msg_id",
        "message_id",
        "from_user_id",
        "pub_time",
        "payment",
        "p_id",
        "clue_id",
        "telephone",
        "challenge",
        "buyer_open_uid",
        "refund_id",
        "refund_fee",
    ]
)
shaped = st.dictionaries(
    keys,
    json_values
    | st.sampled_from(
        [
            "taobao_trade_TradeBuyerPay",
            "taobao_refund_RefundSuccess",
            "110",
            "206",
            "im_receive_msg",
            "2024-01-01 12:00:00",
            '{"tid": "1", "p_id": 1, "clue_id": "c"}',
            "verify_webhook",
        ]
    ),
    max_size=8,
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(orjson.dumps),
    shaped.map(orjson.dumps),
    st.lists(shaped, max_size=3).map(orjson.dumps),
    shaped.map(lambda d: orjson.dumps({"data": d, "content": orjson.dumps(d).decode()})),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channel=st.sampled_from(sorted(ADAPTERS)), body=bodies)
def test_fuzz_signed_garbage_is_malformed_never_a_crash(channel: str, body: bytes) -> None:
    adapter = ADAPTERS[channel]
    incoming = request(sign(channel, body))
    creds: dict[str, Any] = CREDS[channel]
    adapter.verify(incoming, creds)
    for step in (adapter.challenge, adapter.dedupe_key, adapter.unstorable, adapter.parse):
        with contextlib.suppress(Malformed):
            step(incoming, creds)  # type: ignore[operator]


@settings(max_examples=100, deadline=None)
@given(channel=st.sampled_from(sorted(ADAPTERS)), body=st.binary(max_size=300), signature=st.text(max_size=64))
def test_fuzz_unsigned_bodies_are_refused(channel: str, body: bytes, signature: str) -> None:
    headers = {
        h: signature
        for h in ("x-douyin-signature", "x-open-signature", "x-red-signature", "event-sign", "x-siyu-signature")
    }
    incoming = WebhookRequest(
        body=body, headers=headers, query={"msg_signature": signature, "timestamp": "1", "nonce": "n"}
    )
    with pytest.raises((BadSignature, Malformed)):
        ADAPTERS[channel].verify(incoming, CREDS[channel])


def test_wecom_crypto_rejects_tampering() -> None:
    key, corp = CREDS["wecom"]["encoding_aes_key"], CREDS["wecom"]["corp_id"]
    sealed = wecom_crypto.encrypt(b"<xml/>", encoding_aes_key=key, receive_id=corp)
    assert wecom_crypto.decrypt(sealed, encoding_aes_key=key, receive_id=corp) == b"<xml/>"
    with pytest.raises((Malformed, BadSignature)):
        wecom_crypto.decrypt(sealed[:-8] + "AAAAAAA=", encoding_aes_key=key, receive_id=corp)
