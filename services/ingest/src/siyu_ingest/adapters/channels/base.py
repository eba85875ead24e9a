"""What every channel adapter provides: verify → dedupe key → parse, and the platform's own replies."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from siyu_ingest.domain.errors import Malformed
from siyu_ingest.domain.models import Fact

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

    def ack(self) -> Reply:
        """The success reply the platform expects (also for a duplicate)."""

    def parse(self, request: WebhookRequest, creds: Credentials) -> list[Fact]:
        """The canonical facts the delivery states (Malformed when it cannot be understood)."""


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
    return str(value)


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
