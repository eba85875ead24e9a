"""The WeCom sender over httpx: 1v1 (add_msg_template single), groups (add_msg_template group), moments
(add_moment_task aimed at the person).

- Access token: fetched with ``gettoken``, cached until shortly before ``expires_in``, refreshed once when WeCom
  answers 40014/42001 (invalid/expired token).
- Limits: a token bucket per corp and per API, shared by every sender of the process; 45009 (API frequency) and
  45033 (concurrency) halve that bucket's rate for a while and send the touch back for a later retry.
- Errors: a request that never reached WeCom (connect error) or got an explicit transient answer (5xx, -1
  system busy) is retried with backoff; a request whose answer was lost (read timeout) is NOT retried, because
  WeCom has no idempotency key for these APIs and a retry could message the person twice: it is recorded as
  ``failed: outcome_unknown``. Any other errcode is permanent and recorded with its code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from siyu_journey.adapters.senders import Delivered, Failed, Outcome, Outgoing, RetryLater

SLOW_DOWN = frozenset({45009, 45033})
TOKEN_INVALID = frozenset({40014, 42001})
TRANSIENT = frozenset({-1})
API_OF_CHANNEL = {
    "wecom_1v1": "/cgi-bin/externalcontact/add_msg_template",
    "wecom_group": "/cgi-bin/externalcontact/add_msg_template",
    "wecom_moments": "/cgi-bin/externalcontact/add_moment_task",
}


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    burst: float
    tokens: float = -1.0
    updated: float = field(default_factory=time.monotonic)
    penalty_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _current_rate(self, now: float) -> float:
        return self.rate / 2 if now < self.penalty_until else self.rate

    async def take(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                if self.tokens < 0:
                    self.tokens = self.burst
                self.tokens = min(self.burst, self.tokens + (now - self.updated) * self._current_rate(now))
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self._current_rate(now))

    def slow_down(self, seconds: float = 60.0) -> None:
        self.penalty_until = time.monotonic() + seconds
        self.tokens = min(self.tokens, 0.0)


_BUCKETS: dict[tuple[str, str], TokenBucket] = {}


def bucket(corp_id: str, api: str, *, rate: float, burst: float) -> TokenBucket:
    """The process-wide bucket of one corp and API."""
    return _BUCKETS.setdefault((corp_id, api), TokenBucket(rate=rate, burst=burst))


class WeComSender:
    idempotent = False  # WeCom's send APIs take no idempotency key (see the module docstring)

    def __init__(
        self,
        *,
        base_url: str,
        corp_id: str,
        corp_secret: str,
        rate_per_s: float = 20.0,
        burst: float = 20.0,
        attempts: int = 3,
        backoff_s: float = 0.2,
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._corp_id = corp_id
        self._secret = corp_secret
        self._rate = rate_per_s
        self._burst = burst
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._client = client or httpx.AsyncClient(base_url=base_url, timeout=timeout_s)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _access_token(self, *, refresh: bool = False) -> str:
        async with self._token_lock:
            if not refresh and self._token and time.monotonic() < self._token_expires:
                return self._token
            await bucket(self._corp_id, "/cgi-bin/gettoken", rate=self._rate, burst=self._burst).take()
            response = await self._client.get(
                "/cgi-bin/gettoken", params={"corpid": self._corp_id, "corpsecret": self._secret}
            )
            body = response.json()
            if body.get("errcode", 0) != 0:
                raise PermissionError(f"gettoken errcode {body.get('errcode')}")
            self._token = str(body["access_token"])
            # Refresh a little early so a token never expires in flight.
            self._token_expires = time.monotonic() + max(0, int(body.get("expires_in", 7200)) - 300)
            return self._token

    async def send(self, touches: Sequence[Outgoing]) -> list[Outcome]:
        return list(await asyncio.gather(*(self._send_one(t) for t in touches)))

    def _payload(self, touch: Outgoing) -> dict[str, Any]:
        text = {"content": touch.body}
        if touch.channel == "wecom_moments":
            return {
                "text": text,
                "visible_range": {
                    "sender_list": {"user_list": [touch.staff_id] if touch.staff_id else []},
                    "external_contact_list": {"tag_list": []},
                },
            }
        chat_type = "group" if touch.channel == "wecom_group" else "single"
        payload: dict[str, Any] = {"chat_type": chat_type, "sender": touch.staff_id, "text": text}
        if chat_type == "single":
            payload["external_userid"] = [touch.recipient]
        return payload

    async def _send_one(self, touch: Outgoing) -> Outcome:
        api = API_OF_CHANNEL.get(touch.channel)
        if api is None:
            return Failed(f"wecom cannot send channel {touch.channel}")
        # Not reached from delivery (its guardrail skips 1v1 to a person with no friendship: no_wecom_contact);
        # kept for other callers of the sender, so none can send a 1v1 without a recipient.
        if touch.channel == "wecom_1v1" and not touch.recipient:
            return Failed("no_recipient: the person has no WeCom external_userid")
        limiter = bucket(self._corp_id, api, rate=self._rate, burst=self._burst)
        refreshed = False
        for attempt in range(1, self._attempts + 1):
            await limiter.take()
            try:
                token = await self._access_token()
                response = await self._client.post(api, params={"access_token": token}, json=self._payload(touch))
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
                continue
            except httpx.TimeoutException:
                return Failed("outcome_unknown: no answer from wecom")
            except PermissionError as exc:
                return Failed(str(exc))
            if response.status_code >= 500:
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
                continue
            answer = response.json()
            code = int(answer.get("errcode", -1))
            if code == 0:
                # WeCom accepts the task but lists recipients it cannot reach (not the sender's friend, or blocked).
                if touch.recipient and touch.recipient in (answer.get("fail_list") or ()):
                    return Failed("wecom_fail_list: not reachable from the sender")
                return Delivered()
            if code in TOKEN_INVALID and not refreshed:
                refreshed = True
                await self._access_token(refresh=True)
                continue
            if code in SLOW_DOWN:
                limiter.slow_down()
                return RetryLater(after_s=60.0 * attempt, reason=f"wecom_rate_limited:{code}")
            if code in TRANSIENT:
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
                continue
            return Failed(f"wecom_errcode:{code}")
        return RetryLater(after_s=30.0, reason="wecom_unavailable")
