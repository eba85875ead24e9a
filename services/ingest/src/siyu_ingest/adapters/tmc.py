"""Taobao/Tmall TMC as a poll feed: ``taobao.tmc.messages.consume`` then ``taobao.tmc.messages.confirm``.

TMC does not push to a URL. Each tenant whose ``tmall`` credentials carry ``tmc_app_key``/``tmc_app_secret`` is
polled on the TOP gateway; each message is stored as a ``tmall`` delivery (deduplicated on the TMC id, parsed by
the same ``parse_message`` as relayed ones) and only then confirmed, so a crash between the two redelivers a
message that the dedupe absorbs. Requests are signed as TOP expects: ``md5(secret + sorted(k+v) + secret)``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import httpx
import orjson

from siyu_ingest.domain.normalise import SHANGHAI

DEFAULT_GATEWAY = "https://eco.taobao.com/router/rest"


def top_sign(params: dict[str, str], secret: str) -> str:
    joined = "".join(f"{k}{v}" for k, v in sorted(params.items()))
    return hashlib.md5(f"{secret}{joined}{secret}".encode()).hexdigest().upper()


class TmcClient:
    def __init__(self, *, timeout_s: float) -> None:
        self._http = httpx.AsyncClient(timeout=timeout_s)

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, creds: dict[str, Any], method: str, extra: dict[str, str]) -> dict[str, Any]:
        params = {
            "method": method,
            "app_key": str(creds["tmc_app_key"]),
            "timestamp": datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
            "format": "json",
            "v": "2.0",
            "sign_method": "md5",
            **extra,
        }
        params["sign"] = top_sign(params, str(creds["tmc_app_secret"]))
        response = await self._http.post(str(creds.get("tmc_gateway") or DEFAULT_GATEWAY), data=params)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        if "error_response" in answer:
            raise RuntimeError(f"TOP {method} failed: {answer['error_response'].get('code')}")
        return answer

    async def consume(self, creds: dict[str, Any], *, quantity: int = 100) -> list[dict[str, Any]]:
        extra = {"group_name": str(creds.get("tmc_group") or "default"), "quantity": str(quantity)}
        answer = await self._call(creds, "taobao.tmc.messages.consume", extra)
        messages = (answer.get("tmc_messages_consume_response") or {}).get("messages") or {}
        found = messages.get("tmc_message") or []
        return [m for m in found if isinstance(m, dict)]

    async def confirm(self, creds: dict[str, Any], ids: list[str]) -> None:
        extra = {"group_name": str(creds.get("tmc_group") or "default"), "s_message_ids": ",".join(ids)}
        await self._call(creds, "taobao.tmc.messages.confirm", extra)


def as_delivery_body(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)
