"""Douyin Open Platform webhooks: private messages, follows, group joins.

Signature: ``X-Douyin-Signature = hex(sha1(client_secret + raw_body))`` (plain SHA-1, not an HMAC).
URL check: ``{"event":"verify_webhook","content":{"challenge":N}}`` → reply ``{"challenge":N}``.
Dedupe: the ``Msg-Id`` header (same entity and action keep it), else ``server_message_id``, else ``log_id``.
``content`` arrives as an object or as a JSON string depending on the event.
"""

from __future__ import annotations

import hashlib
from typing import Any

from siyu_ingest.adapters.channels.base import (
    Credentials,
    JsonPayload,
    Reply,
    WebhookRequest,
    account_kind,
    as_object,
    int64_challenge,
    json_reply,
    load_json,
    required_text,
    same_digest,
    secret,
    text_field,
)
from siyu_ingest.domain.errors import BadSignature, Malformed
from siyu_ingest.domain.models import Fact, Identifier, Lead, LeadKind
from siyu_ingest.domain.normalise import epoch_time, phones_in_text
from siyu_shared.events.catalog.common import SourceRef

LEAD_EVENTS: dict[str, LeadKind] = {
    "im_receive_msg": "private_message",
    "im_enter_direct_msg": "consult",
    "new_follow_action": "follow",
    "group_fans_event": "group_join",
    "dial_phone": "consult",
    "website_contact": "form",
    "personal_tab_contact": "consult",
}


class DouyinAdapter(JsonPayload):
    name = "douyin"
    required_secrets: tuple[str, ...] = ("client_secret",)
    signature_headers: tuple[str, ...] = ("x-douyin-signature", "msg-id", "content-type")

    def verify(self, request: WebhookRequest, creds: Credentials) -> None:
        given = request.headers.get("x-douyin-signature", "").strip().lower()
        expected = hashlib.sha1(secret(creds, "client_secret").encode() + request.body).hexdigest()
        if not same_digest(given, expected):
            raise BadSignature("X-Douyin-Signature does not match")

    def challenge(self, request: WebhookRequest, creds: Credentials) -> Reply | None:
        body = _envelope(request.body)
        if body.get("event") != "verify_webhook":
            return None
        content = as_object(body.get("content"), "content")
        return json_reply({"challenge": int64_challenge(content.get("challenge"))})

    def verify_get(self, request: WebhookRequest, creds: Credentials) -> Reply:
        return json_reply({"detail": "douyin verifies with a POST"}, status=405)

    def dedupe_key(self, request: WebhookRequest, creds: Credentials) -> str:
        msg_id = request.headers.get("msg-id", "").strip()
        if msg_id:
            return msg_id[:200]
        body = _envelope(request.body)
        content = body.get("content")
        if isinstance(content, dict | str):
            server_id = text_field(as_object(content, "content"), "server_message_id")
            if server_id:
                return server_id[:200]
        log_id = text_field(body, "log_id")
        if log_id:
            return log_id[:200]
        raise Malformed("no Msg-Id header, server_message_id or log_id to deduplicate on")

    def ack(self) -> Reply:
        return json_reply({"err_no": 0, "err_tips": "success"})

    def parse(self, request: WebhookRequest, creds: Credentials) -> list[Fact]:
        body = _envelope(request.body)
        event = required_text(body, "event")
        kind = LEAD_EVENTS.get(event)
        if kind is None:
            return []  # sent messages, reads, recalls, authorisations: nothing about a lead
        open_id = required_text(body, "from_user_id")
        raw_content = body.get("content")
        content: dict[str, Any] = as_object(raw_content, "content") if raw_content not in (None, "") else {}
        if event == "group_fans_event":
            open_id = text_field(content, "open_id") or open_id
        phones = phones_in_text(content["text"]) if isinstance(content.get("text"), str) else []
        identifiers = (Identifier("douyin_open_id", open_id), *(Identifier("phone", p) for p in phones))
        when = content.get("create_time") or content.get("action_time")
        occurred_at = epoch_time(when) if when is not None else request.received_at
        ad_info = content.get("ad_info") if isinstance(content.get("ad_info"), dict) else {}
        assert isinstance(ad_info, dict)
        source = SourceRef(
            channel="douyin",
            account_id=text_field(body, "to_user_id"),
            account_kind=account_kind(creds, text_field(body, "to_user_id")),
            ad_id=text_field(ad_info, "ad_id"),
            creative_id=text_field(ad_info, "creative_id"),
            promotion_id=text_field(ad_info, "promotion_id"),
            campaign_id=text_field(ad_info, "adv_id"),
        )
        lead_key = self.dedupe_key(request, creds)
        attributes: dict[str, Any] = {"douyin_event": event}
        if isinstance(content.get("message_type"), str):
            attributes["message_type"] = content["message_type"]
        if isinstance(content.get("im_group_id"), str):
            attributes["group_id"] = content["im_group_id"]
        return [
            Lead(
                lead_id=f"douyin:{lead_key}",
                kind=kind,
                occurred_at=occurred_at,
                source=source,
                identifiers=identifiers,
                attributes=attributes,
                has_phone=bool(phones),
            )
        ]


def _envelope(body: bytes) -> dict[str, Any]:
    return as_object(load_json(body), "body")
