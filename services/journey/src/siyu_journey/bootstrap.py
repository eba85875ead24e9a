"""Composition root of the journey service: settings, routers, consumers and loops wired into a ServiceSpec."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from siyu_journey.adapters.senders import ChannelRouter, Sender
from siyu_journey.adapters.senders.sandbox import SandboxSender
from siyu_journey.adapters.senders.sms import SmsSender
from siyu_journey.adapters.senders.wecom import WeComSender
from siyu_journey.api.recorded import build_recorded_router
from siyu_journey.api.routes import build_router
from siyu_journey.handlers import Handlers
from siyu_journey.settings import JourneySettings
from siyu_journey.workers import SenderFactory, deliver_queued, worker_loops
from siyu_shared.events.topics import SUBSCRIPTIONS
from siyu_shared.kafka.runner import BatchHandling
from siyu_shared.service import ConsumerSpec, Runtime, ServiceSpec

T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"


def system_clock() -> datetime:
    return datetime.now(UTC)


def default_senders(settings: JourneySettings) -> SenderFactory:
    def build(runtime: Runtime) -> ChannelRouter:
        by_channel: dict[str, Sender] = {}
        if settings.wecom_channels and settings.wecom_corp_id and settings.wecom_corp_secret:
            wecom = WeComSender(
                base_url=settings.wecom_base_url,
                corp_id=settings.wecom_corp_id,
                corp_secret=settings.wecom_corp_secret.get_secret_value(),
            )
            by_channel |= dict.fromkeys(settings.wecom_channels, wecom)
        if settings.sms_base_url and settings.sms_api_key:
            by_channel["sms"] = SmsSender(
                base_url=settings.sms_base_url,
                api_key=settings.sms_api_key.get_secret_value(),
                sign_name=settings.sms_sign_name,
            )
        return ChannelRouter(SandboxSender(runtime.engine), by_channel)

    return build


def _one_per_runtime(factory: Callable[[Runtime], T]) -> Callable[[Runtime], T]:
    """The consumer and the worker loops of one process share one sender (WeCom's limits are per corp) and one
    signal that touches were left pending."""
    built: dict[int, tuple[Runtime, T]] = {}  # holds the runtime: its id is not reused meanwhile

    def get(runtime: Runtime) -> T:
        entry = built.get(id(runtime))
        if entry is None:
            entry = built[id(runtime)] = (runtime, factory(runtime))
        return entry[1]

    return get


def build_spec(
    settings: JourneySettings | None = None,
    *,
    clock: Callable[[], datetime] = system_clock,
    senders: SenderFactory | None = None,
    **overrides: Any,
) -> ServiceSpec:
    """The service as configured by the environment, or by ``settings`` / keyword overrides (tests, tools).

    ``clock`` and ``senders`` are seams for tests and benchmarks (a controllable clock, a local WeCom server).
    """
    settings = settings or JourneySettings(**overrides)
    sender = _one_per_runtime(senders or default_senders(settings))
    wake = _one_per_runtime(lambda runtime: asyncio.Event())

    def consumer(runtime: Runtime) -> BatchHandling:
        # Touches an event queues for now go out in its transaction, through the worker's (shared) sender.
        queued = deliver_queued(settings, clock, sender(runtime), wake(runtime))
        return Handlers(clock=clock, topics=settings.topics, queued=queued).batch()

    return ServiceSpec(
        name="journey",
        title="Siyu Journey",
        description="Staged touches (SOPs as data) on time, never twice, never spam.",
        settings=settings,
        migrations=MIGRATIONS,
        routers=(build_router(clock), build_recorded_router(clock, settings.topics)),
        consumers=(
            ConsumerSpec(
                name="main",
                topics=SUBSCRIPTIONS["journey"]["main"],
                batch=consumer,
            ),
        ),
        background=(worker_loops(settings, clock, sender, wake),),
    )
