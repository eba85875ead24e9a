"""All four services as separate processes over a Postgres and a Kafka of their own (the fault tests restart them).

One platform per session (services started once, as ``make run`` starts them); every test works in a tenant of its
own, configured through the admin APIs as an operator would. Journey sends 1v1 WeCom touches through its real WeCom
sender to the WeCom simulator (which records every message it is asked to send); other channels go to the sandbox.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from siyu_devstack.demo import replay, tenant
from siyu_devstack.demo.wecom_sim import CORP_ID, CORP_SECRET, SimContact, WeComSim, serving
from siyu_devstack.run import issue_everywhere
from siyu_devstack.services import ServiceProcess, service_processes, start_all, stop_all
from siyu_devstack.stack import Stack
from siyu_devstack.testing import read_topic
from siyu_shared.events.topics import Topic

pytestmark = pytest.mark.e2e

NO_QUIET_HOURS = {"quiet_start": "00:00", "quiet_end": "00:00"}
"""Tests run at any hour; quiet hours have their own unit and integration tests."""

SENDING_LEASE_S = 30
"""Journey's lease on a WeCom touch in ``sending`` (300 s deployed): a touch a crash left between WeCom's answer and
the commit of its outcome is recorded ``failed: outcome_unknown`` after it. Short enough to wait for in a test, long
enough for a delivery round on a loaded box (WeCom's rate limit is 20 sends a second; a phase queues ~40)."""


def journey_env(env: dict[str, str], wecom_api: str) -> dict[str, str]:
    """Journey's settings for 1v1 WeCom touches through its real (non-idempotent) WeCom sender to the simulator."""
    return env | {
        "JOURNEY_WECOM_CHANNELS": '["wecom_1v1"]',
        "JOURNEY_WECOM_BASE_URL": wecom_api,
        "JOURNEY_WECOM_CORP_ID": CORP_ID,
        "JOURNEY_WECOM_CORP_SECRET": CORP_SECRET,
        "JOURNEY_SENDING_LEASE_S": str(SENDING_LEASE_S),
    }


@dataclass
class Platform:
    stack: Stack
    processes: dict[str, ServiceProcess]
    wecom: WeComSim
    wecom_api: str
    groups: dict[str, tuple[str, ...]]
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30))

    @property
    def urls(self) -> tenant.Endpoints:
        return tenant.Endpoints.of({name: proc.url for name, proc in self.processes.items()})


@dataclass
class Brand:
    """One test's tenant on the platform, with an admin key valid on every service."""

    platform: Platform
    tenant: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def urls(self) -> tenant.Endpoints:
        return self.platform.urls

    async def events(self, topic: Topic) -> list[dict[str, Any]]:
        stack = self.platform.stack
        messages = await read_topic(stack.bootstrap_servers, stack.topics.name(topic), idle_s=0.5)
        decoded = [orjson.loads(value) for _, value, _ in messages]
        return [e for e in decoded if e.get("tenant") == self.tenant]

    async def settle(self, timeout_s: float = 120.0) -> None:
        await replay.settle(
            self.platform.http,
            self.urls,
            tenant=self.tenant,
            api_key=self.api_key,
            bootstrap=self.platform.stack.bootstrap_servers,
            groups=self.platform.groups,
            timeout_s=timeout_s,
        )

    async def get(self, service: str, path: str, **params: Any) -> Any:
        base = getattr(self.urls, service)
        reply = await self.platform.http.get(f"{base}{path}", params=params, headers=self.headers)
        assert reply.status_code == 200, f"{service} {path}: {reply.status_code} {reply.text}"
        return reply.json()


KAFKA_AFTER_A_CRASH = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}
"""The fault tests SIGKILL the broker: restarted, it is fenced until its previous session expires (9 s by default;
restart 11 s against 2 s after a clean stop, 4 s with these). One broker, one JVM: its heartbeats to its own
controller never cross a network."""


@pytest.fixture(scope="session")
def e2e_stack() -> Iterator[Stack]:
    with Stack(fast=True, kafka_properties=KAFKA_AFTER_A_CRASH) as local:
        yield local


@pytest.fixture(scope="session")
async def platform(e2e_stack: Stack) -> AsyncIterator[Platform]:
    with ExitStack() as resources:
        sim, base = resources.enter_context(serving({}))
        processes = service_processes(e2e_stack.env(), e2e_stack.log_dir)
        for proc in processes:
            if proc.name == "journey":
                proc.env = journey_env(proc.env, base)
        await asyncio.to_thread(start_all, processes)
        resources.callback(stop_all, processes)
        groups = await asyncio.to_thread(replay.subscriptions, e2e_stack)
        running = Platform(e2e_stack, {p.name: p for p in processes}, sim, base, groups)
        try:
            yield running
        finally:
            await running.http.aclose()


@pytest.fixture
async def brand(platform: Platform) -> Brand:
    name = f"e2e{secrets.token_hex(4)}"
    key = await issue_everywhere(platform.stack, tenant=name)
    await tenant.configure(
        platform.http, platform.urls, tenant=name, api_key=key, wecom_api=platform.wecom_api, guardrails=NO_QUIET_HOURS
    )
    return Brand(platform, name, key)


def know_contacts(platform: Platform, contacts: dict[str, SimContact]) -> None:
    platform.wecom.contacts.update(contacts)
