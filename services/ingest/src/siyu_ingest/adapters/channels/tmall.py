"""Taobao/Tmall TMC trade and refund messages.

TMC is a WebSocket/poll feed, not a push: a relay (our TMC consumer, or the brand's own) posts each message here
with ``X-Siyu-Signature: hex(HMAC-SHA256(secret, raw_body))``. The same ``parse_message`` serves any feeder.
Dedupe: the TMC message ``id``. ``content`` is a JSON string; money is in yuan strings; times are Asia/Shanghai.
A relay that decrypted the receiver (``oaid`` via ``taobao.top.oaid.decrypt``) may add ``receiver_mobile`` to
the content: it links the buyer to the phone (masked values are kept partial and never matched).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from siyu_ingest.adapters.channels.base import (
    Credentials,
    JsonPayload,
    Reply,
    WebhookRequest,
    account_kind,
    as_object,
    json_reply,
    load_json,
    required_text,
    same_digest,
    secret,
    text_field,
)
from siyu_ingest.domain.errors import BadSignature
from siyu_ingest.domain.models import Fact, Identifier, OrderChange, OrderChangeKind, OrderLineFact
from siyu_ingest.domain.normalise import normalise_phone, shanghai_time, yuan_to_fen
from siyu_shared.events.catalog.common import SourceRef

TOPICS: dict[str, OrderChangeKind] = {
    "taobao_trade_TradeBuyerPay": "paid",
    "taobao_trade_TradeSuccess": "completed",
    "taobao_trade_TradeClose": "closed",
    "taobao_trade_TradeCloseAndModifyDetailOrder": "closed",
    "taobao_refund_RefundSuccess": "refunded",
}


class TmallAdapter(JsonPayload):
    name = "tmall"
    required_secrets: tuple[str, ...] = ("relay_secret",)
    signature_headers: tuple[str, ...] = ("x-siyu-signature", "content-type")

    def verify(self, request: WebhookRequest, creds: Credentials) -> None:
        given = request.headers.get("x-siyu-signature", "").strip().lower()
        expected = hmac.new(secret(creds, "relay_secret").encode(), request.body, hashlib.sha256).hexdigest()
        if not same_digest(given, expected):
            raise BadSignature("X-Siyu-Signature does not match")

    def challenge(self, request: WebhookRequest, creds: Credentials) -> Reply | None:
        return None

    def verify_get(self, request: WebhookRequest, creds: Credentials) -> Reply:
        return json_reply({"detail": "tmall relays send no GET verification"}, status=405)

    def dedupe_key(self, request: WebhookRequest, creds: Credentials) -> str:
        return required_text(as_object(load_json(request.body), "body"), "id")[:200]

    def ack(self) -> Reply:
        return json_reply({"code": 0, "msg": "success"})

    def parse(self, request: WebhookRequest, creds: Credentials) -> list[Fact]:
        return parse_message(as_object(load_json(request.body), "body"), creds)


def parse_message(message: dict[str, Any], creds: Credentials) -> list[Fact]:
    """The facts of one TMC message (``{id, topic, pub_time, user_id, user_nick, content}``)."""
    topic = required_text(message, "topic")
    kind = TOPICS.get(topic)
    if kind is None:
        return []  # created, shipped, memo, address…: not a step of the lifecycle we publish
    content = as_object(message.get("content"), "content")
    tid = required_text(content, "tid")
    occurred_at = shanghai_time(required_text(message, "pub_time"))
    identifiers: list[Identifier] = []
    buyer = text_field(content, "buyer_open_uid")
    if buyer:
        identifiers.append(Identifier("taobao_ouid", buyer))
    phone = normalise_phone(text_field(content, "receiver_mobile"))
    if phone and phone.e164:
        identifiers.append(Identifier("phone", phone.e164))
    shop_id = text_field(message, "user_id")
    if kind == "paid":
        amount = yuan_to_fen(text_field(content, "payment"))
        oid = text_field(content, "oid") or tid
        return [
            OrderChange(
                kind="paid",
                channel="tmall",
                order_no=tid,
                occurred_at=occurred_at,
                identifiers=tuple(identifiers),
                amount_fen=amount,
                lines=(OrderLineFact(line_id=oid, amount_fen=amount),),
                shop_id=shop_id,
                source=SourceRef(
                    channel="tmall", account_id=shop_id, account_kind=account_kind(creds, shop_id, "shop")
                ),
            )
        ]
    if kind == "refunded":
        refund_id = required_text(content, "refund_id")
        refund_oid = text_field(content, "oid")
        return [
            OrderChange(
                kind="refunded",
                channel="tmall",
                order_no=tid,
                occurred_at=occurred_at,
                identifiers=tuple(identifiers),
                amount_fen=yuan_to_fen(text_field(content, "refund_fee")),
                refund_id=refund_id,
                line_id=refund_oid if refund_oid and refund_oid != tid else None,
                shop_id=shop_id,
            )
        ]
    return [
        OrderChange(
            kind=kind,
            channel="tmall",
            order_no=tid,
            occurred_at=occurred_at,
            identifiers=tuple(identifiers),
            shop_id=shop_id,
            reason=text_field(content, "status") if kind == "closed" else None,
        )
    ]
