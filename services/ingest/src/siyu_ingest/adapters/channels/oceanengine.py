"""Ocean Engine (巨量引擎) SPI lead push.

Signature: ``X-Open-Signature = hex(HMAC-SHA256(secret, raw_body))``. Verification: ``event=verify_webhook`` with a
``challenge`` (GET query or POST body), a random ``int64`` in the SDK's model, echoed back as that integer
(anything else is a 400). Dedupe: ``message_id``. ``data`` is a JSON string (or an
object) carrying the clue fields of the clue API (``clue_id``, ``telephone``, ad/creative/promotion ids…), at
its top level or under ``content``. Reply ``{"BaseResp":{"StatusCode":200,...}}`` (4xx: no retry).
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
    int64_challenge,
    json_reply,
    load_json,
    required_text,
    same_digest,
    secret,
    text_field,
)
from siyu_ingest.domain.errors import BadSignature
from siyu_ingest.domain.models import Fact, Identifier, Lead, LeadKind
from siyu_ingest.domain.normalise import clean_name, normalise_phone, shanghai_time
from siyu_shared.events.catalog.common import SourceRef
from siyu_shared.events.catalog.leads import AttributeValue

CLUE_TYPES: dict[str, LeadKind] = {"0": "form", "1": "consult", "2": "consult", "3": "form", "4": "form", "5": "form"}
PRIVATE_MESSAGE_SOURCE = "5"


def _ok(extra: dict[str, Any] | None = None) -> Reply:
    return json_reply({**(extra or {}), "BaseResp": {"StatusCode": 200, "StatusMessage": "success"}})


class OceanEngineAdapter(JsonPayload):
    name = "oceanengine"
    required_secrets: tuple[str, ...] = ("secret",)
    signature_headers: tuple[str, ...] = ("x-open-signature", "content-type")

    def verify(self, request: WebhookRequest, creds: Credentials) -> None:
        given = request.headers.get("x-open-signature", "").strip().lower()
        expected = hmac.new(secret(creds, "secret").encode(), request.body, hashlib.sha256).hexdigest()
        if not same_digest(given, expected):
            raise BadSignature("X-Open-Signature does not match")

    def challenge(self, request: WebhookRequest, creds: Credentials) -> Reply | None:
        body = as_object(load_json(request.body), "body")
        if body.get("event") != "verify_webhook":
            return None
        return _ok({"challenge": int64_challenge(body.get("challenge"))})

    def verify_get(self, request: WebhookRequest, creds: Credentials) -> Reply:
        # The GET challenge carries no body to sign; answering it reveals nothing but the echo.
        if request.query.get("event") != "verify_webhook" or "challenge" not in request.query:
            return json_reply({"detail": "expected event=verify_webhook&challenge=…"}, status=400)
        return _ok({"challenge": int64_challenge(request.query["challenge"])})

    def dedupe_key(self, request: WebhookRequest, creds: Credentials) -> str:
        return required_text(as_object(load_json(request.body), "body"), "message_id")[:200]

    def ack(self) -> Reply:
        return _ok()

    def parse(self, request: WebhookRequest, creds: Credentials) -> list[Fact]:
        envelope = as_object(load_json(request.body), "body")
        data = as_object(envelope.get("data"), "data")
        clue = as_object(data["content"], "data.content") if "content" in data else data
        clue_id = text_field(clue, "clue_id")
        if not clue_id:
            return []  # another SPI subscription (not a lead)
        phone = normalise_phone(text_field(clue, "telephone") or text_field(clue, "telphone"))
        identifiers: list[Identifier] = []
        if phone and phone.e164:
            identifiers.append(Identifier("phone", phone.e164))
        if not identifiers:
            identifiers.append(Identifier("douyin_open_id", f"clue:{clue_id}"))
        kind: LeadKind = CLUE_TYPES.get(str(clue.get("clue_type", "0")), "other")
        if str(clue.get("clue_source")) == PRIVATE_MESSAGE_SOURCE:
            kind = "private_message"
        created = text_field(clue, "create_time_detail")
        advertiser = text_field(clue, "advertiser_id") or text_field(data, "advertiser_id")
        attributes: dict[str, AttributeValue] = {}
        for key, target in (("city_name", "city"), ("province_name", "province"), ("gender", "gender")):
            value = text_field(clue, key)
            if value:
                attributes[target] = value
        if clue.get("age") not in (None, "", 0):
            attributes["age"] = str(clue["age"])
        for key in ("clue_type", "clue_source", "module_name", "site_name"):
            value = text_field(clue, key)
            if value is not None:
                attributes[key] = value
        source = SourceRef(
            channel="oceanengine",
            account_id=advertiser,
            account_kind=account_kind(creds, advertiser),
            campaign_id=text_field(clue, "campaign_id"),
            ad_id=text_field(clue, "ad_id"),
            creative_id=text_field(clue, "creative_id"),
            promotion_id=text_field(clue, "promotion_id"),
        )
        return [
            Lead(
                lead_id=f"oceanengine:{clue_id}",
                kind=kind,
                occurred_at=shanghai_time(created) if created else request.received_at,
                source=source,
                identifiers=tuple(identifiers),
                attributes=attributes,
                has_phone=bool(phone and phone.e164),
                partial_phone=phone.partial if phone else None,
                name=clean_name(text_field(clue, "name")),
            )
        ]
