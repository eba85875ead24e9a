"""What every channel adapter provides: verify → dedupe key → parse, and the platform's own replies."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from siyu_ingest.domain.errors import Malformed
from siyu_ingest.domain.models import Fact
from siyu_shared.values import INT64_MAX, INT64_MIN, NUL, unstorable

Credentials = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    """Lower-cased names."""
    query: Mapping[str, str] = field(default_factory=dict)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    media_type: str = "application/json"


def json_reply(payload: object, status: int = 200) -> Reply:
    return Reply(status=status, body=orjson.dumps(payload))


def text_reply(text: str, status: int = 200) -> Reply:
    return Reply(status=status, body=text.encode(), media_type="text/plain")


class ChannelAdapter(Protocol):
    name: str
    required_secrets: tuple[str, ...]
    signature_headers: tuple[str, ...]
    """Headers kept with the raw delivery (the ones that matter for re-verification and dedupe)."""

    def verify(self, request: WebhookRequest, creds: Credentials) -> None:
        """Raise BadSignature unless the raw body is signed by ``creds``."""

    def challenge(self, request: WebhookRequest, creds: Credentials) -> Reply | None:
        """The reply to a URL-verification POST, or None for a normal delivery."""

    def verify_get(self, request: WebhookRequest, creds: Credentials) -> Reply:
        """The reply to a GET URL verification (WeCom echostr, Ocean Engine challenge)."""

    def dedupe_key(self, request: WebhookRequest, creds: Credentials) -> str:
        """The platform's own id of this delivery; Malformed if it has none."""

    def unstorable(self, request: WebhookRequest, creds: Credentials) -> str | None:
        """Why the decoded payload could not be stored (a NUL, an integer beyond int64, at any depth), or None."""

    def signed_at(self, request: WebhookRequest) -> datetime | None:
        """When the platform says it sent the delivery, if its signature covers such a time (WeCom's timestamp)."""

    def ack(self) -> Reply:
        """The success reply the platform expects (also for a duplicate)."""

    def parse(self, request: WebhookRequest, creds: Credentials) -> list[Fact]:
        """The canonical facts the delivery states (Malformed when it cannot be understood)."""


class JsonPayload:
    """What the channels whose body is JSON share: the storability check of the decoded body, no signed time."""

    def unstorable(self, request: WebhookRequest, creds: Credentials) -> str | None:
        return json_unstorable(request.body)

    def signed_at(self, request: WebhookRequest) -> datetime | None:
        return None


def may_hold_unstorable(body: bytes) -> bool:
    """Whether a JSON text can decode to a NUL, a lone surrogate or an integer beyond int64 at any depth: only if it
    holds the escape ``\\u00``, a surrogate's escape (``\\ud…``, ``\\uD…``: raw surrogates are not UTF-8) or 19
    digits in a row. A NUL is only ever written as the escape ``\\u0000`` (raw control characters
    are not JSON); a character escaped inside a JSON string nested in a string starts ``\\u00`` or doubles the
    backslash (``\\\\u0000``, which contains it); such an integer has at least 19 digits (as digits, or with
    escapes again). Two scans in C, about a microsecond for a delivery, where decoding and walking takes tens."""
    return b"\\u00" in body or b"\\ud" in body or b"\\uD" in body or _DIGIT_RUN in body.translate(_DIGITS)


_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
"""Every ASCII digit becomes ``0`` and every other byte a space: a run of 19 digits becomes :data:`_DIGIT_RUN`."""
_DIGIT_RUN = b"0" * 19


def json_unstorable(body: bytes) -> str | None:
    """Why the JSON ``body``, decoded (with the JSON objects and arrays that its strings hold: platforms send
    ``content`` and ``data`` that way), could not be stored; None when it can, or when it is not JSON at all
    (that is the parser's to say, with its own reason)."""
    if not may_hold_unstorable(body):
        return None  # the common case: nothing to decode
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return payload_unstorable(document)


def payload_unstorable(value: Any, *, where: str = "$") -> str | None:
    """:func:`siyu_shared.values.unstorable`, also inside strings that are themselves JSON documents."""
    return unstorable(value, where=where, nested_json=True)


def int64_challenge(value: object) -> int:
    """A URL-verification challenge as the platforms define it (a random 64-bit integer, ``int64`` in the SDKs):
    an integer, or its decimal ASCII digits (the GET query carries text); Malformed for anything else, such as
    ``²`` (a digit to ``str.isdigit``, not to ``int``) or thousands of digits."""
    if isinstance(value, str) and _CHALLENGE.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX:
        raise Malformed("challenge must be a 64-bit integer")
    return value


_CHALLENGE = re.compile(r"-?[0-9]{1,19}", re.ASCII)


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"body is not JSON: {exc.msg}") from exc


def as_object(value: Any, what: str) -> dict[str, Any]:
    """A JSON object given either as an object or as a JSON string (platforms do both)."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise Malformed(f"{what} is a string but not JSON") from exc
    if not isinstance(value, dict):
        raise Malformed(f"{what} must be an object")
    return value


def text_field(obj: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise Malformed(f"`{key}` is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Malformed(f"`{key}` must be a string or an integer")
    text = str(value)
    if NUL in text:
        raise Malformed(f"`{key}` contains the NUL character (U+0000)")
    return text


def required_text(obj: Mapping[str, Any], key: str) -> str:
    value = text_field(obj, key, required=True)
    assert value is not None
    return value


def secret(creds: Credentials, key: str) -> str:
    value = creds.get(key)
    if not isinstance(value, str) or not value:
        raise Malformed(f"channel credentials lack `{key}`")
    return value


def account_kind(creds: Credentials, account_id: str | None, default: str = "enterprise") -> Any:
    """The kind of a brand's account on a platform (enterprise, kol, koc…), from the channel's `accounts` map."""
    accounts = creds.get("accounts")
    if isinstance(accounts, dict) and account_id and account_id in accounts:
        return accounts[account_id]
    return default


def same_digest(given: str, expected: str) -> bool:
    """Constant-time comparison that also accepts non-ASCII input (a forged header must be a 401, not a crash)."""
    return bool(given) and hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
