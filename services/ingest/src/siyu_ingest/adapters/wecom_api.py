"""WeCom server API client: the external contact's detail (remark mobiles, unionid) behind a callback."""

from __future__ import annotations

import time
from typing import Any

import httpx


class WeComApiError(RuntimeError):
    pass


class WeComApi:
    def __init__(self, *, timeout_s: float) -> None:
        self._client = httpx.AsyncClient(timeout=timeout_s)
        self._tokens: dict[tuple[str, str, str], tuple[float, str]] = {}

    async def close(self) -> None:
        await self._client.aclose()

    async def _token(self, base: str, corp_id: str, corp_secret: str) -> str:
        key = (base, corp_id, corp_secret)
        cached = self._tokens.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        answer = await self._get(f"{base}/cgi-bin/gettoken", {"corpid": corp_id, "corpsecret": corp_secret})
        token = str(answer["access_token"])
        self._tokens[key] = (time.monotonic() + float(answer.get("expires_in", 7200)) - 300, token)
        return token

    async def contact_detail(self, *, base: str, corp_id: str, corp_secret: str, external_userid: str) -> bytes:
        """The raw JSON answer of ``externalcontact/get`` (stored as a delivery of its own)."""
        token = await self._token(base, corp_id, corp_secret)
        response = await self._client.get(
            f"{base}/cgi-bin/externalcontact/get",
            params={"access_token": token, "external_userid": external_userid},
        )
        response.raise_for_status()
        body = response.content
        if response.json().get("errcode", 0) != 0:
            raise WeComApiError(f"externalcontact/get errcode {response.json().get('errcode')}")
        return body

    async def _get(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        response = await self._client.get(url, params=params)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        if answer.get("errcode", 0) != 0:
            raise WeComApiError(f"{url.rsplit('/', 1)[-1]} errcode {answer.get('errcode')}")
        return answer
