"""Configure the demo tenant, replay the story through the real endpoints, and summarise what happened."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from siyu_devstack.demo import dataset, replay, summary, tenant
from siyu_devstack.stack import Stack


@dataclass
class DemoResult:
    data: dataset.Dataset
    report: replay.ReplayReport
    summary: summary.Summary

    def lines(self) -> list[str]:
        head = (
            f"Replayed {self.report.deliveries} signed webhooks and {self.report.claims} claims "
            f"in {self.report.seconds:.1f}s (each phase waited for the pipeline to settle)."
        )
        return [
            head,
            *summary.render(self.summary, humans=len(self.data.humans), expected_persons=self.data.expected_persons),
        ]


async def play(
    stack: Stack,
    urls: Mapping[str, str],
    *,
    tenant_id: str,
    api_key: str,
    wecom_api: str,
    data: dataset.Dataset,
    guardrails: Mapping[str, Any] | None = None,
    progress: replay.Progress = lambda _: None,
) -> DemoResult:
    endpoints = tenant.Endpoints.of(urls)
    groups = await asyncio.to_thread(replay.subscriptions, stack)
    async with httpx.AsyncClient(timeout=30) as http:
        await tenant.configure(
            http, endpoints, tenant=tenant_id, api_key=api_key, wecom_api=wecom_api, guardrails=guardrails
        )
        progress(f"tenant {tenant_id!r} configured: channels, rule packs, journeys published")
        report = await replay.replay(
            http,
            endpoints,
            data,
            tenant=tenant_id,
            api_key=api_key,
            groups=groups,
            bootstrap=stack.bootstrap_servers,
            progress=progress,
        )
        seen = await summary.collect(
            http,
            endpoints,
            tenant=tenant_id,
            api_key=api_key,
            bootstrap=stack.bootstrap_servers,
            topics=stack.topics,
            period=data.period,
        )
    return DemoResult(data, report, seen)
