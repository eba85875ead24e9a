"""WeCom (企业微信) external-contact callbacks.

GET ``?msg_signature&timestamp&nonce&echostr``: verify, decrypt ``echostr`` and answer the plaintext as is.
POST the same query with ``<xml><ToUserName/><Encrypt/></xml>``: verify the signature over the sorted
token/timestamp/nonce/Encrypt, decrypt (AES-256-CBC), check the CorpID, reply ``success``.
Dedupe: ``FromUserName:CreateTime:ChangeType`` as the platform suggests, plus the contact or chat, the staff
and the member list: ``FromUserName`` is always ``sys``, so two friends added in the same second would
otherwise collide.
The query's ``timestamp`` is covered by the signature: it is the callback's send time (:meth:`signed_at`), which
the webhook edge holds to a freshness window.
Details (remark mobiles, unionid) are not in the callback: the worker fetches them with
``externalcontact/get`` and stores the answer as a delivery of its own, on the internal channel
:data:`CONTACT_DETAIL_CHANNEL` that no webhook route serves (:func:`parse_contact_detail` reads it).
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import orjson

from siyu_ingest.adapters.channels import wecom_crypto
from siyu_ingest.adapters.channels.base import (
    Credentials,
    Reply,
    WebhookRequest,
    payload_unstorable,
    secret,
    text_reply,
)
from siyu_ingest.domain.errors import BadSignature, Malformed
from siyu_ingest.domain.models import ContactChange, Fact, GroupChange, Identifier, IdentityObservation
from siyu_ingest.domain.normalise import epoch_time, normalise_phone
from siyu_shared.events.catalog.common import SourceRef
from siyu_shared.values import INT64_MAX, INT64_MIN

CONTACT_DETAIL_CHANNEL = "wecom_contact_detail"
"""The channel of the ``externalcontact/get`` answers the worker stores: internal, never an adapter's name, so no
caller can post to it and nothing a caller sends (a header, a body) can make a callback one of these."""
_EPOCH_SECONDS = re.compile(r"[0-9]{1,10}", re.ASCII)
"""Epoch seconds up to 9999999999 (the year 2286): any real send time, and always a datetime."""


class WeComAdapter:
    name = "wecom"
    required_secrets: tuple[str, ...] = ("token", "encoding_aes_key", "corp_id")
    signature_headers: tuple[str, ...] = ("content-type",)

    def verify(self, request: WebhookRequest, creds: Credentials) -> None:
        encrypted = _encrypted(request.body)
        wecom_crypto.check_signature(
            request.query.get("msg_signature", ""),
            secret(creds, "token"),
            request.query.get("timestamp", ""),
            request.query.get("nonce", ""),
            encrypted,
        )

    def challenge(self, request: WebhookRequest, creds: Credentials) -> Reply | None:
        return None

    def verify_get(self, request: WebhookRequest, creds: Credentials) -> Reply:
        echostr = request.query.get("echostr", "")
        wecom_crypto.check_signature(
            request.query.get("msg_signature", ""),
            secret(creds, "token"),
            request.query.get("timestamp", ""),
            request.query.get("nonce", ""),
            echostr,
        )
        plain = wecom_crypto.decrypt(
            echostr, encoding_aes_key=secret(creds, "encoding_aes_key"), receive_id=secret(creds, "corp_id")
        )
        return Reply(status=200, body=plain, media_type="text/plain")

    def unstorable(self, request: WebhookRequest, creds: Credentials) -> str | None:
        return payload_unstorable(_event(request, creds))

    def signed_at(self, request: WebhookRequest) -> datetime | None:
        raw = request.query.get("timestamp", "")
        if not _EPOCH_SECONDS.fullmatch(raw):
            raise Malformed("timestamp must be epoch seconds")
        return datetime.fromtimestamp(int(raw), UTC)

    def dedupe_key(self, request: WebhookRequest, creds: Credentials) -> str:
        event = _event(request, creds)
        parts = [
            event.get("FromUserName", ""),
            event.get("CreateTime", ""),
            event.get("ChangeType", ""),
            event.get("ExternalUserID") or event.get("ChatId", ""),
            event.get("UserID", ""),
            event.get("UpdateDetail", ""),
            ",".join(event.get("MemChangeList", [])),
        ]
        if not event.get("CreateTime"):
            raise Malformed("no CreateTime to deduplicate on")
        key = ":".join(str(p) for p in parts)
        return key if len(key) <= 200 else key[:150] + hashlib.sha256(key.encode()).hexdigest()[:32]

    def ack(self) -> Reply:
        return text_reply("success")

    def parse(self, request: WebhookRequest, creds: Credentials) -> list[Fact]:
        return facts_of(_event(request, creds))

    def detail_wanted(self, request: WebhookRequest, creds: Credentials) -> str | None:
        """The external_userid whose detail (remark mobiles, unionid) is worth fetching after this event."""
        event = _event(request, creds)
        if event.get("Event") == "change_external_contact" and event.get("ChangeType") in (
            "add_external_contact",
            "edit_external_contact",
            "add_half_external_contact",
        ):
            return str(event.get("ExternalUserID") or "") or None
        return None


def facts_of(event: dict[str, Any]) -> list[Fact]:
    kind, change = event.get("Event"), event.get("ChangeType")
    occurred_at = epoch_time(event.get("CreateTime", ""))
    if kind == "change_external_contact":
        external, staff = _need(event, "ExternalUserID"), _need(event, "UserID")
        if change in ("add_external_contact", "add_half_external_contact"):
            source = SourceRef(
                channel="wecom",
                account_id=staff,
                account_kind="staff",
                wecom_state=str(event.get("State") or "") or None,
            )
            return [
                ContactChange(
                    added=True,
                    external_userid=external,
                    staff_id=staff,
                    occurred_at=occurred_at,
                    source=source,
                    welcome_code_present=bool(event.get("WelcomeCode")),
                )
            ]
        if change in ("del_external_contact", "del_follow_user"):
            removed_by = "customer" if change == "del_follow_user" else "staff"
            if str(event.get("Source", "")).upper() == "DELETE_BY_TRANSFER":
                removed_by = "transfer"
            return [
                ContactChange(
                    added=False,
                    external_userid=external,
                    staff_id=staff,
                    occurred_at=occurred_at,
                    source=SourceRef(channel="wecom", account_id=staff, account_kind="staff"),
                    removed_by=removed_by,  # type: ignore[arg-type]
                )
            ]
        return []
    if kind == "change_external_chat" and change == "update":
        detail = event.get("UpdateDetail")
        if detail not in ("add_member", "del_member"):
            return []
        chat_id = _need(event, "ChatId")
        scene_field = "JoinScene" if detail == "add_member" else "QuitScene"
        try:
            scene = int(event.get(scene_field) or 0)
        except ValueError as exc:
            raise Malformed(f"{scene_field} is not a number") from exc
        if not INT64_MIN <= scene <= INT64_MAX:
            raise Malformed(f"{scene_field} is beyond 64 bits")
        return [
            GroupChange(
                joined=detail == "add_member",
                chat_id=chat_id,
                external_userid=member,
                scene=scene,
                occurred_at=occurred_at,
            )
            for member in event.get("MemChangeList", [])
            if _is_external(member)
        ]
    return []


def contact_detail_key(body: bytes) -> str:
    """The dedupe key of a stored ``externalcontact/get`` answer (on :data:`CONTACT_DETAIL_CHANNEL`)."""
    return "detail:" + hashlib.sha256(body).hexdigest()[:32]


def parse_contact_detail(body: bytes) -> list[Fact]:
    """``externalcontact/get`` answer → the identifiers known together for that contact."""
    try:
        detail = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed("contact detail is not JSON") from exc
    contact = detail.get("external_contact") if isinstance(detail, dict) else None
    if not isinstance(contact, dict) or not contact.get("external_userid"):
        raise Malformed("contact detail has no external_contact.external_userid")
    identifiers = [Identifier("wecom_external_userid", str(contact["external_userid"]))]
    if contact.get("unionid"):
        identifiers.append(Identifier("unionid", str(contact["unionid"])))
    for follow in detail.get("follow_user") or []:
        for mobile in follow.get("remark_mobiles") or [] if isinstance(follow, dict) else []:
            phone = normalise_phone(str(mobile))
            if phone and phone.e164:
                identifiers.append(Identifier("phone", phone.e164))
    return [IdentityObservation(identifiers=tuple(dict.fromkeys(identifiers)))]


def _is_external(member: str) -> bool:
    # External contacts' ids start with wm/wo; members of the corp (staff) are plain userids.
    return member.startswith(("wm", "wo"))


def _need(event: dict[str, Any], key: str) -> str:
    value = event.get(key)
    if not value:
        raise Malformed(f"`{key}` is missing")
    return str(value)


def _encrypted(body: bytes) -> str:
    root = _xml(body)
    encrypted = root.findtext("Encrypt")
    if not encrypted:
        raise Malformed("no <Encrypt> element")
    return encrypted.strip()


def _event(request: WebhookRequest, creds: Credentials) -> dict[str, Any]:
    plain = wecom_crypto.decrypt(
        _encrypted(request.body),
        encoding_aes_key=secret(creds, "encoding_aes_key"),
        receive_id=secret(creds, "corp_id"),
    )
    root = _xml(plain)
    event: dict[str, Any] = {}
    for child in root:
        if child.tag == "MemChangeList":
            event["MemChangeList"] = [(item.text or "").strip() for item in child if (item.text or "").strip()]
        else:
            event[child.tag] = (child.text or "").strip()
    return event


def _xml(data: bytes) -> ET.Element:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise Malformed("XML with a DOCTYPE or entities is refused")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise Malformed(f"body is not XML: {exc}") from exc


__all__ = [
    "CONTACT_DETAIL_CHANNEL",
    "BadSignature",
    "WeComAdapter",
    "contact_detail_key",
    "facts_of",
    "parse_contact_detail",
]
