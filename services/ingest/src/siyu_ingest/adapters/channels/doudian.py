"""抖店 (Douyin e-commerce) order message push.

Headers ``app-id`` and ``event-sign = hex(md5(app_key + raw_body + app_secret))`` (case-insensitive).
The body is an array of messages ``{tag, msg_id|msgId, data}`` (``data`` a JSON string or an object); tag ``"0"``
is the push verification. Dedupe: the ``msg_id`` values. Reply ``{"code":0,"msg":"success"}``.
Messages carry no buyer identity: the order itself (``p_id``) stands for its buyer until a later link.
Tags: 110 paid, 103 completed, 200 refund created (treated as refunded only on 206 refund success), 106 closed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from siyu_ingest.adapters.channels.base import (
    Credentials,
    JsonPayload,
    Reply,
    WebhookRequest,
    as_object,
    json_reply,
    load_json,
    same_digest,
    secret,
    text_field,
)
from siyu_ingest.domain.errors import BadSignature, Malformed
from siyu_ingest.domain.models import Fact, Identifier, OrderChange, OrderChangeKind
from siyu_ingest.domain.normalise import epoch_time, fen
from siyu_shared.events.catalog.common import SourceRef

TAGS: dict[str, OrderChangeKind] = {"110": "paid", "103": "completed", "106": "closed", "206": "refunded"}


class DoudianAdapter(JsonPayload):
    name = "doudian"
    required_secrets: tuple[str, ...] = ("app_key", "app_secret")
    signature_headers: tuple[str, ...] = ("app-id", "event-sign", "content-type")

    def verify(self, request: WebhookRequest, creds: Credentials) -> None:
        given = request.headers.get("event-sign", "").strip().lower()
        raw = secret(creds, "app_key").encode() + request.body + secret(creds, "app_secret").encode()
        if not same_digest(given, hashlib.md5(raw).hexdigest()):
            raise BadSignature("event-sign does not match")

    def challenge(self, request: WebhookRequest, creds: Credentials) -> Reply | None:
        messages = _messages(request.body)
        if messages and all(str(m.get("tag")) == "0" for m in messages):
            return self.ack()
        return None

    def verify_get(self, request: WebhookRequest, creds: Credentials) -> Reply:
        return json_reply({"detail": "doudian verifies with tag 0"}, status=405)

    def dedupe_key(self, request: WebhookRequest, creds: Credentials) -> str:
        ids = []
        for message in _messages(request.body):
            msg_id = text_field(message, "msg_id") or text_field(message, "msgId")
            if not msg_id:
                raise Malformed("a message has no msg_id")
            ids.append(msg_id)
        key = ",".join(ids)
        return key if len(key) <= 200 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()

    def ack(self) -> Reply:
        return json_reply({"code": 0, "msg": "success"})

    def parse(self, request: WebhookRequest, creds: Credentials) -> list[Fact]:
        facts: list[Fact] = []
        for message in _messages(request.body):
            kind = TAGS.get(str(message.get("tag")))
            if kind is None:
                continue
            data = as_object(message.get("data"), "data")
            order_no = text_field(data, "p_id")
            if not order_no:
                raise Malformed("`data.p_id` is missing")
            shop_id = text_field(data, "shop_id")
            when = data.get("pay_time") or data.get("update_time") or data.get("create_time")
            occurred_at = epoch_time(when) if when is not None else request.received_at
            facts.append(
                OrderChange(
                    kind=kind,
                    channel="doudian",
                    order_no=order_no,
                    occurred_at=occurred_at,
                    identifiers=(Identifier("doudian_order", order_no),),
                    amount_fen=_amount(data, kind),
                    shop_id=shop_id,
                    refund_id=text_field(data, "aftersale_id") if kind == "refunded" else None,
                    source=SourceRef(channel="doudian", account_id=shop_id, account_kind="shop")
                    if kind == "paid"
                    else None,
                )
            )
        return facts


def _amount(data: dict[str, Any], kind: OrderChangeKind) -> int:
    if kind == "paid":
        return fen(data.get("pay_amount", 0))
    if kind == "refunded":
        return fen(data.get("refund_amount", 0))
    return 0


def _messages(body: bytes) -> list[dict[str, Any]]:
    parsed = load_json(body)
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list) or not parsed:
        raise Malformed("body must be a non-empty array of messages")
    return [as_object(m, "message") for m in parsed]
