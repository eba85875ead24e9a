"""Background loops of the worker role: fire due timers (delivering what they queue for now), deliver queued
touches, recover stale sends.

Both loops claim rows with ``FOR UPDATE SKIP LOCKED``, so any number of worker processes can run them; a
stopped worker leaves its rows untouched (uncommitted claims roll back) for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_journey import delivery, service
from siyu_journey.adapters.senders import ChannelRouter
from siyu_journey.settings import JourneySettings
from siyu_shared.db.engine import unit_of_work
from siyu_shared.kafka.errors import is_infrastructure_failure
from siyu_shared.logging import get_logger
from siyu_shared.service import BackgroundLoop, Runtime

log = get_logger(__name__)
Clock = Callable[[], datetime]
IDLE_POLL_MAX_S = 1.0
"""An idle delivery loop polls at most this far apart (each empty poll walks the pending index). Touches queued in
this process and left pending wake it at once (``Wake``); what waits for time (quiet hours, a retry's backoff) is
due within this of its time."""
SenderFactory = Callable[[Runtime], ChannelRouter]
WakeFactory = Callable[[Runtime], asyncio.Event]
"""The process's signal that touches were left pending for its delivery loops (set after queueing them)."""


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _pause_or_wake(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Until ``seconds`` pass, the worker stops, or ``wake`` is set."""
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


def delivery_config(settings: JourneySettings) -> delivery.DeliveryConfig:
    return delivery.DeliveryConfig(
        batch=settings.sender_batch,
        max_attempts=settings.sender_max_attempts,
        lease=timedelta(seconds=settings.sending_lease_s),
    )


def deliver_queued(
    settings: JourneySettings, clock: Clock, sender: ChannelRouter, wake: asyncio.Event | None = None
) -> service.Queued:
    """What a transaction that queued touches calls: ``delivery.deliver_now`` (those due now, through a channel
    that deduplicates on the touch id, go out in that transaction); if some are left pending, ``wake`` is set for
    the delivery loops (which poll fast again for a moment, as the transaction commits)."""
    config = delivery_config(settings)

    async def queued(
        session: AsyncSession, rows: list[dict[str, Any]], persons: Mapping[tuple[str, str], Any] | None
    ) -> set[str]:
        done, left = await delivery.deliver_now(
            session, rows, now=clock(), sender=sender, topics=settings.topics, config=config, persons=persons
        )
        if left and wake is not None:
            wake.set()
        return done

    return queued


def worker_loops(
    settings: JourneySettings, clock: Clock, senders: SenderFactory, wakes: WakeFactory | None = None
) -> BackgroundLoop:
    """The worker's loops, sharing one sender per process (WeCom's token and rate limits are per corp):
    ``settings.timer_workers`` timer claimers and ``settings.sender_workers`` deliverers, concurrent so that while
    one waits on the database another computes.

    A timer claimer delivers the touches it queues that are due now through a channel that deduplicates on the
    touch id (the sandbox, SMS) in its own transaction (``delivery.deliver_now``): the same decision as a
    delivery round, without the round trip through ``pending``. Everything else goes through the delivery loop.
    """
    config = delivery_config(settings)

    async def run(runtime: Runtime, stop: asyncio.Event) -> None:
        sender = senders(runtime)
        wake = wakes(runtime) if wakes is not None else asyncio.Event()
        await asyncio.gather(
            *(claimer(runtime, sender, wake, stop) for _ in range(settings.timer_workers)),
            *(deliverer(runtime, sender, wake, stop) for _ in range(settings.sender_workers)),
        )

    async def claimer(runtime: Runtime, sender: ChannelRouter, wake: asyncio.Event, stop: asyncio.Event) -> None:
        deliver = deliver_queued(settings, clock, sender, wake)
        failures = 0
        while not stop.is_set():
            try:
                async with unit_of_work(runtime.sessions) as session:
                    fired = await service.fire_due_timers(
                        session, now=clock(), limit=settings.timer_batch, queued=deliver
                    )
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("timer_round_failed", error=repr(exc), infrastructure=is_infrastructure_failure(exc))
                await _pause(stop, min(5.0, 0.2 * 2**failures))
                continue
            if not fired:
                await _pause(stop, settings.timer_poll_s)

    async def deliverer(runtime: Runtime, sender: ChannelRouter, wake: asyncio.Event, stop: asyncio.Event) -> None:
        failures = 0
        idle = 0  # empty rounds in a row: most touches go out where they are queued, so polls back off a little
        last_recovery = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                if loop.time() - last_recovery > 5.0:
                    last_recovery = loop.time()
                    await delivery.recover_stale(
                        sessions=runtime.sessions, sender=sender, clock=clock, topics=settings.topics, config=config
                    )
                claimed = await delivery.deliver_round(
                    sessions=runtime.sessions, sender=sender, clock=clock, topics=settings.topics, config=config
                )
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("delivery_round_failed", error=repr(exc))
                await _pause(stop, min(5.0, 0.2 * 2**failures))
                continue
            if claimed:
                idle = 0
            else:
                idle += 1
                await _pause_or_wake(stop, wake, min(IDLE_POLL_MAX_S, settings.sender_poll_s * 2 ** min(idle - 1, 8)))
            if wake.is_set():
                wake.clear()
                idle = 0

    return run
