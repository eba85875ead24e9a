"""Configure one brand (tenant) on the four services through their admin APIs, as an operator would.

Channel credentials on ingest (WeCom pointed at ``wecom_api``), the rule packs on segmentation, the example
journeys published on journey, guardrails if given. Attribution runs on its default plan (first claim wins,
1v1 staff 5 %, KOL 10 %, KOC 5 %, group activators activity credit only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from siyu_devstack.demo.dataset import XHS_ACCOUNTS
from siyu_devstack.demo.wecom_sim import CORP_SECRET
from siyu_ingest import samples

PACKS = ("dcba", "rfm", "lifecycle", "channel")
JOURNEYS = (
    "greeting",
    "relationship",
    "skin_advice",
    "first_order_coupon",
    "group_invite",
    "red_packet_reengage",
    "weekly_new_product",
)


class SetupError(RuntimeError):
    pass


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the four services."""

    ingest: str
    segmentation: str
    journey: str
    attribution: str

    @classmethod
    def of(cls, urls: Mapping[str, str]) -> Endpoints:
        return cls(urls["ingest"], urls["segmentation"], urls["journey"], urls["attribution"])


def _check(response: httpx.Response, what: str, *, allowed: tuple[int, ...] = ()) -> Any:
    if response.status_code >= 300 and response.status_code not in allowed:
        raise SetupError(f"{what}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


def channel_settings(wecom_api: str) -> dict[str, dict[str, Any]]:
    """What ``PUT /v1/tenants/{t}/channels/{channel}`` takes per channel: secrets and options."""
    out: dict[str, dict[str, Any]] = {}
    for channel, creds in samples.CREDENTIALS.items():
        secrets = {k: v for k, v in creds.items() if isinstance(v, str)}
        options = {k: v for k, v in creds.items() if not isinstance(v, str)}
        if channel == "xiaohongshu":
            options["accounts"] = dict(XHS_ACCOUNTS)
        if channel == "wecom":
            secrets["corp_secret"] = CORP_SECRET
            options["api_base"] = wecom_api
        out[channel] = {"secrets": secrets, "options": options}
    return out


async def configure(
    http: httpx.AsyncClient,
    urls: Endpoints,
    *,
    tenant: str,
    api_key: str,
    wecom_api: str,
    guardrails: Mapping[str, Any] | None = None,
) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    for channel, body in channel_settings(wecom_api).items():
        reply = await http.put(f"{urls.ingest}/v1/tenants/{tenant}/channels/{channel}", json=body, headers=headers)
        _check(reply, f"ingest channel {channel}")
    for pack in PACKS:
        reply = await http.post(f"{urls.segmentation}/v1/packs/{pack}/install", headers=headers)
        _check(reply, f"segmentation pack {pack}", allowed=(409,))
    if guardrails is not None:
        reply = await http.put(f"{urls.journey}/v1/guardrails", json=dict(guardrails), headers=headers)
        _check(reply, "journey guardrails")
    for name in JOURNEYS:
        made = _check(await http.post(f"{urls.journey}/v1/journeys/examples/{name}", headers=headers), name)
        path = f"/v1/journeys/{made['journey_id']}/versions/{made['version']}/publish"
        _check(await http.post(f"{urls.journey}{path}", headers=headers), f"publish {name}")
