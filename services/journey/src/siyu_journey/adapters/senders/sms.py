"""An SMS sender over an HTTP gateway that takes a caller-supplied id and deduplicates on it (as Aliyun SMS's
``OutId`` or most aggregators' ``client_msg_id`` do): the touch id is that key, so a resend after a crash is
absorbed by the gateway and the sender counts as idempotent.

The phone number never passes through the journey service: the gateway (or ingest's resolver behind it) maps
the person id to the number, so no personal data is logged or stored here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx

from siyu_journey.adapters.senders import Delivered, Failed, Outcome, Outgoing, RetryLater


class SmsSender:
    idempotent = True

    def __init__(
        self, *, base_url: str, api_key: str, sign_name: str, timeout_s: float = 5.0, concurrency: int = 20
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s, headers={"Authorization": f"Bearer {api_key}"}
        )
        self._sign_name = sign_name
        self._slots = asyncio.Semaphore(concurrency)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, touches: Sequence[Outgoing]) -> list[Outcome]:
        return list(await asyncio.gather(*(self._send_one(t) for t in touches)))

    async def _send_one(self, touch: Outgoing) -> Outcome:
        async with self._slots:
            try:
                response = await self._client.post(
                    "/v1/sms",
                    json={
                        "out_id": touch.touch_id,
                        "tenant": touch.tenant,
                        "person_id": touch.person_id,
                        "sign_name": self._sign_name,
                        "content": touch.body,
                    },
                )
            except httpx.TransportError as exc:
                # Safe to retry even when the request may have arrived: the gateway deduplicates on out_id.
                return RetryLater(after_s=30.0, reason=f"sms_unreachable:{type(exc).__name__}")
        if response.status_code == 429 or response.status_code >= 500:
            return RetryLater(after_s=60.0, reason=f"sms_http_{response.status_code}")
        if response.status_code >= 400:
            return Failed(f"sms_rejected:{response.status_code}")
        return Delivered()
