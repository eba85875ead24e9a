"""Realistic signed deliveries of every channel (the platforms' own formats), for tests, the demo and the bench.

Each builder returns ``(body, headers, query)`` exactly as the platform would send them, signed with the
credentials in ``CREDENTIALS``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import orjson

from siyu_ingest.adapters.channels import wecom_crypto

Signed = tuple[bytes, dict[str, str], dict[str, str]]

CREDENTIALS: dict[str, dict[str, Any]] = {
    "douyin": {"client_secret": "dy-client-secret"},
    "oceanengine": {"secret": "oe-spi-secret"},
    "xiaohongshu": {"token": "xhs-landing-token", "accounts": {"xhs-kol-9": "kol"}},
    "doudian": {"app_key": "dd-app-key", "app_secret": "dd-app-secret"},
    "tmall": {"relay_secret": "tmc-relay-secret"},
    "wecom": {
        "token": "wecom-token",
        "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "corp_id": "ww_corp",
    },
}


def _json(payload: object) -> bytes:
    return orjson.dumps(payload)


def douyin(payload: dict[str, Any], *, msg_id: str | None = None, secret: str | None = None) -> Signed:
    body = _json(payload)
    key = secret or CREDENTIALS["douyin"]["client_secret"]
    headers = {"X-Douyin-Signature": hashlib.sha1(key.encode() + body).hexdigest(), "Content-Type": "application/json"}
    if msg_id:
        headers["Msg-Id"] = msg_id
    return body, headers, {}


def douyin_dm(*, open_id: str, text: str, message_id: str, content_as_string: bool = False) -> dict[str, Any]:
    content: Any = {
        "conversation_short_id": "@c29bfc000+MNgg==",
        "server_message_id": message_id,
        "conversation_type": 1,
        "message_type": "text",
        "text": text,
        "create_time": 1710000000000,
        "user_infos": [{"open_id": open_id, "nick_name": "用户A", "avatar": "https://p3.douyinpic.com/a.jpeg"}],
    }
    if content_as_string:
        content = orjson.dumps(content).decode()
    return {
        "event": "im_receive_msg",
        "client_key": "awxxxxxxxx",
        "from_user_id": open_id,
        "to_user_id": "aaa-7ae0-4399-914a-5eb1df5861ba",
        "log_id": f"2023429834752345783{message_id[-4:]}",
        "content": content,
    }


def douyin_follow(*, open_id: str, log_id: str) -> dict[str, Any]:
    return {
        "event": "new_follow_action",
        "client_key": "awr8bfr64vxgk036",
        "from_user_id": open_id,
        "to_user_id": "e3af6e1d-brand",
        "content": '{"action_type":1,"action_time":1686811643}',
        "log_id": log_id,
    }


def xiaohongshu(payload: dict[str, Any], *, token: str | None = None) -> Signed:
    body = _json(payload)
    key = token or CREDENTIALS["xiaohongshu"]["token"]
    signature = hmac.new(key.encode(), body, hashlib.sha1).hexdigest()
    return body, {"X-Red-Signature": f"sha1={signature}", "Content-Type": "application/json"}, {}


def xiaohongshu_lead(
    *, leads_id: str, phone: str, account_id: str = "xhs-ent-1", name: str = " 张三 "
) -> dict[str, Any]:
    return {
        "timestamp": 1721800000000,
        "source": "聚光",
        "data": {
            "landing_page_id": 123,
            "url": "https://www.xiaohongshu.com/page/123",
            "submitted_time": "2024-07-24 13:40:00",
            "source_channel": "信息流",
            "account_id": account_id,
            "account_name": "品牌企业号",
            "campaign_id": 1,
            "campaign_name": "秋季新品",
            "unit_id": 2,
            "unit_name": "干皮人群",
            "creative_id": 3,
            "leads_id": leads_id,
            "keyword": "保湿面霜",
            "data": [
                {"label": "姓名", "value": name},
                {"label": "电话", "value": phone},
                {"label": "肤质", "value": "干皮"},
                {"label": "城市", "value": "上海"},
            ],
        },
    }


def oceanengine(payload: dict[str, Any], *, secret: str | None = None) -> Signed:
    body = _json(payload)
    key = secret or CREDENTIALS["oceanengine"]["secret"]
    signature = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Open-Signature": signature, "Content-Type": "application/json"}, {}


def oceanengine_clue(*, message_id: str, clue_id: str, telephone: str) -> dict[str, Any]:
    clue = {
        "app_id": 1,
        "advertiser_id": 1760000000000001,
        "core_user_id": 2,
        "event": "clue",
        "clue_id": clue_id,
        "ad_id": 1700000000000002,
        "creative_id": 1700000000000003,
        "promotion_id": 7300000000000004,
        "clue_type": 0,
        "clue_source": 1,
        "create_time_detail": "2024-05-01 10:00:00",
        "name": "李四",
        "telephone": telephone,
        "city_name": "杭州",
        "module_name": "表单-试用装",
    }
    return {
        "message_id": message_id,
        "subscribe_task_id": 10086,
        "advertiser_ids": [1760000000000001],
        "account_relation": "{}",
        "service_label": "clue.create",
        "data": orjson.dumps(clue).decode(),
        "publish_time": 1714528800000,
        "timestamp": 1714528800000,
        "nonce": 77,
    }


def doudian(messages: list[dict[str, Any]], *, app_key: str | None = None) -> Signed:
    body = _json(messages)
    creds = CREDENTIALS["doudian"]
    raw = (app_key or creds["app_key"]).encode() + body + creds["app_secret"].encode()
    headers = {"app-id": "7000000001", "event-sign": hashlib.md5(raw).hexdigest(), "Content-Type": "application/json"}
    return body, headers, {}


def doudian_message(
    *, tag: str, msg_id: str, p_id: int, amount_fen: int = 2990, data_as_string: bool = True
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "p_id": p_id,
        "s_ids": [p_id],
        "shop_id": 12345,
        "order_status": 2,
        "order_type": 0,
        "pay_type": 1,
        "biz": 2,
        "pay_time": 1618990587,
    }
    if tag == "110":
        data["pay_amount"] = amount_fen
    if tag == "206":
        data.update({"aftersale_id": f"as{msg_id}", "refund_amount": amount_fen})
    return {"tag": tag, "msg_id": msg_id, "data": orjson.dumps(data).decode() if data_as_string else data}


def tmall(message: dict[str, Any], *, secret: str | None = None) -> Signed:
    body = _json(message)
    key = secret or CREDENTIALS["tmall"]["relay_secret"]
    return body, {"X-Siyu-Signature": hmac.new(key.encode(), body, hashlib.sha256).hexdigest()}, {}


def tmall_message(
    *,
    message_id: str,
    topic: str,
    tid: str,
    buyer: str,
    payment: str = "99.00",
    pub_time: str = "2024-01-01 12:00:00",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "buyer_nick": "t**1",
        "buyer_open_uid": buyer,
        "payment": payment,
        "oid": int(tid),
        "tid": int(tid),
        "seller_nick": "店铺A",
        "status": "WAIT_SELLER_SEND_GOODS",
        "type": "fixed",
        **(extra or {}),
    }
    return {
        "id": message_id,
        "topic": topic,
        "pub_app_key": "12497914",
        "pub_time": pub_time,
        "user_id": "2200000000",
        "user_nick": "店铺A",
        "content": orjson.dumps(content).decode(),
    }


def wecom_xml(fields: dict[str, Any]) -> bytes:
    parts = []
    for key, value in fields.items():
        if key == "MemChangeList":
            parts.append("<MemChangeList>" + "".join(f"<Item>{v}</Item>" for v in value) + "</MemChangeList>")
        elif isinstance(value, int):
            parts.append(f"<{key}>{value}</{key}>")
        else:
            parts.append(f"<{key}><![CDATA[{value}]]></{key}>")
    return ("<xml>" + "".join(parts) + "</xml>").encode()


def wecom(event_xml: bytes, *, token: str | None = None, timestamp: str | None = None) -> Signed:
    """A signed callback; its ``timestamp`` (signed, held to the freshness window) is now unless given."""
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    creds = CREDENTIALS["wecom"]
    encrypted = wecom_crypto.encrypt(event_xml, encoding_aes_key=creds["encoding_aes_key"], receive_id=creds["corp_id"])
    nonce = secrets.token_hex(4)
    signature = wecom_crypto.signature(token or creds["token"], timestamp, nonce, encrypted)
    body = (
        f"<xml><ToUserName><![CDATA[{creds['corp_id']}]]></ToUserName><AgentID><![CDATA[1000002]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    ).encode()
    return body, {"Content-Type": "text/xml"}, {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}


def wecom_event(event: str, *, create_time: int, **fields: str | int | list[str]) -> bytes:
    """A WeCom system event callback (``MsgType`` event, sent by ``sys`` to the corp), as XML before encryption."""
    return wecom_xml(
        {"ToUserName": "ww_corp", "FromUserName": "sys", "CreateTime": create_time, "MsgType": "event", "Event": event}
        | fields
    )


def wecom_add_contact(
    *, external_userid: str, staff: str = "zhangsan", state: str = "xhs_note_01", create_time: int = 1403610513
) -> bytes:
    return wecom_event(
        "change_external_contact",
        create_time=create_time,
        ChangeType="add_external_contact",
        UserID=staff,
        ExternalUserID=external_userid,
        State=state,
        WelcomeCode="WELCOMECODE",
    )


def wecom_group_join(
    *, external_userids: list[str], chat_id: str = "wrGroupChat", create_time: int = 1403610513, scene: int = 3
) -> bytes:
    """``change_external_chat`` / ``add_member``: customers joined a group (JoinScene 3 = by QR code)."""
    return wecom_event(
        "change_external_chat",
        create_time=create_time,
        ChatId=chat_id,
        ChangeType="update",
        UpdateDetail="add_member",
        JoinScene=scene,
        MemChangeCnt=len(external_userids),
        MemChangeList=external_userids,
    )


def wecom_contact_removed(*, external_userid: str, staff: str = "zhangsan", create_time: int = 1403610513) -> bytes:
    """``change_external_contact`` / ``del_follow_user``: the customer deleted the staff member."""
    return wecom_event(
        "change_external_contact",
        create_time=create_time,
        ChangeType="del_follow_user",
        UserID=staff,
        ExternalUserID=external_userid,
    )


def wecom_echo(echo: str) -> dict[str, str]:
    creds = CREDENTIALS["wecom"]
    encrypted = wecom_crypto.encrypt(
        echo.encode(), encoding_aes_key=creds["encoding_aes_key"], receive_id=creds["corp_id"]
    )
    nonce, timestamp = "nonce1", "1409659589"
    return {
        "msg_signature": wecom_crypto.signature(creds["token"], timestamp, nonce, encrypted),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": encrypted,
    }


def sign_raw(channel: str, body: bytes) -> Signed:
    """Any body signed as the channel signs (fuzzing reaches the parsers, not just the signature check)."""
    creds = CREDENTIALS[channel]
    if channel == "douyin":
        return body, {"x-douyin-signature": hashlib.sha1(creds["client_secret"].encode() + body).hexdigest()}, {}
    if channel == "oceanengine":
        return body, {"x-open-signature": hmac.new(creds["secret"].encode(), body, hashlib.sha256).hexdigest()}, {}
    if channel == "xiaohongshu":
        return (
            body,
            {"x-red-signature": "sha1=" + hmac.new(creds["token"].encode(), body, hashlib.sha1).hexdigest()},
            {},
        )
    if channel == "doudian":
        raw = creds["app_key"].encode() + body + creds["app_secret"].encode()
        return body, {"event-sign": hashlib.md5(raw).hexdigest()}, {}
    if channel == "tmall":
        return (
            body,
            {"x-siyu-signature": hmac.new(creds["relay_secret"].encode(), body, hashlib.sha256).hexdigest()},
            {},
        )
    return wecom(body)
