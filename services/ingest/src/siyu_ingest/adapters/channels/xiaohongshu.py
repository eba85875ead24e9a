"""Xiaohongshu 聚光 landing-page lead push.

Signature: ``X-Red-Signature: sha1=<hex HMAC-SHA1(token, raw_body)>`` (the token shown on the landing page).
Dedupe: ``data.leads_id``. Form answers are ``label``/``value`` pairs; the phone is plain text (or masked).
Reply: HTTP 200 with ``{"code":0,"msg":"success"}``.
The account that owns the landing page is the lead's source; its kind (enterprise / kol / koc) comes from the
channel's ``accounts`` map, since the push does not say.
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
from siyu_ingest.domain.errors import BadSignature, Malformed
from siyu_ingest.domain.models import Fact, Identifier, Lead
from siyu_ingest.domain.normalise import clean_name, epoch_time, normalise_phone, shanghai_time
from siyu_shared.events.catalog.common import SourceRef
from siyu_shared.events.catalog.leads import AttributeValue

PHONE_LABELS = frozenset({"电话", "手机", "手机号", "手机号码", "联系电话", "phone", "mobile", "telephone"})
NAME_LABELS = frozenset({"姓名", "名字", "称呼", "name"})
ATTRIBUTE_LABELS = {
    "城市": "city",
    "所在城市": "city",
    "肤质": "skin_type",
    "年龄": "age_band",
    "年龄段": "age_band",
    "职业": "profession",
    "性别": "gender",
    "兴趣": "interests",
    "微信": "has_wechat",
}


class XiaohongshuAdapter(JsonPayload):
    name = "xiaohongshu"
    required_secrets: tuple[str, ...] = ("token",)
    signature_headers: tuple[str, ...] = ("x-red-signature", "content-type")

    def verify(self, request: WebhookRequest, creds: Credentials) -> None:
        given = request.headers.get("x-red-signature", "").strip()
        expected = hmac.new(secret(creds, "token").encode(), request.body, hashlib.sha1).hexdigest()
        if not given.lower().startswith("sha1=") or not same_digest(given[5:].lower(), expected):
            raise BadSignature("X-Red-Signature does not match")

    def challenge(self, request: WebhookRequest, creds: Credentials) -> Reply | None:
        return None

    def verify_get(self, request: WebhookRequest, creds: Credentials) -> Reply:
        return json_reply({"detail": "xiaohongshu sends no GET verification"}, status=405)

    def dedupe_key(self, request: WebhookRequest, creds: Credentials) -> str:
        return required_text(_lead(request.body), "leads_id")[:200]

    def ack(self) -> Reply:
        return json_reply({"code": 0, "msg": "success"})

    def parse(self, request: WebhookRequest, creds: Credentials) -> list[Fact]:
        lead = _lead(request.body)
        leads_id = required_text(lead, "leads_id")
        answers = lead.get("data") or []
        if not isinstance(answers, list):
            raise Malformed("`data.data` must be a list of label/value answers")
        phone = None
        name = None
        attributes: dict[str, AttributeValue] = {}
        for answer in answers:
            if not isinstance(answer, dict):
                raise Malformed("a form answer must be an object with label and value")
            label = str(answer.get("label") or "").strip()
            value = answer.get("value")
            text = "" if value is None else str(value).strip()
            if not text:
                continue
            if label.lower() in PHONE_LABELS:
                phone = normalise_phone(text)
            elif label.lower() in NAME_LABELS:
                name = clean_name(text)
            elif label in ATTRIBUTE_LABELS:
                attributes[ATTRIBUTE_LABELS[label]] = clean_name(text) or text
        identifiers: list[Identifier] = []
        if phone and phone.e164:
            identifiers.append(Identifier("phone", phone.e164))
        user_id = text_field(lead, "user_id")
        if user_id:
            identifiers.append(Identifier("xhs_user_id", user_id))
        if not identifiers:
            identifiers.append(Identifier("xhs_user_id", f"lead:{leads_id}"))
        submitted = text_field(lead, "submitted_time")
        envelope = as_object(load_json(request.body), "body")
        occurred_at = (
            shanghai_time(submitted)
            if submitted
            else epoch_time(envelope["timestamp"])
            if envelope.get("timestamp")
            else request.received_at
        )
        account_id = text_field(lead, "account_id")
        kind = account_kind(creds, account_id)
        # A lead on a KOL's or KOC's own account credits that partner unless the push names one (kol_user_id).
        partner = text_field(lead, "kol_user_id") or (account_id if kind in ("kol", "koc") else None)
        source = SourceRef(
            channel="xiaohongshu",
            account_id=account_id,
            account_kind=kind,
            campaign_id=text_field(lead, "campaign_id"),
            unit_id=text_field(lead, "unit_id"),
            creative_id=text_field(lead, "creative_id"),
            note_id=text_field(lead, "note_id"),
            partner_id=partner,
        )
        for key in ("landing_page_id", "keyword", "source_channel"):
            value = text_field(lead, key)
            if value:
                attributes[key] = value
        return [
            Lead(
                lead_id=f"xiaohongshu:{leads_id}",
                kind="form",
                occurred_at=occurred_at,
                source=source,
                identifiers=tuple(identifiers),
                attributes=attributes,
                has_phone=bool(phone and phone.e164),
                partial_phone=phone.partial if phone else None,
                name=name,
            )
        ]


def _lead(body: bytes) -> dict[str, Any]:
    envelope = as_object(load_json(body), "body")
    return as_object(envelope.get("data"), "data")
