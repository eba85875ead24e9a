"""Composition root of the attribution service: settings, routers, consumers and loops wired into a ServiceSpec."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from siyu_attribution import accounting
from siyu_attribution.accounting import Books
from siyu_attribution.api import claims, ledger, plans, reports
from siyu_attribution.batch import batch_handler
from siyu_attribution.handlers import event_handlers
from siyu_attribution.settings import AttributionSettings
from siyu_shared.db.engine import unit_of_work
from siyu_shared.events.topics import SUBSCRIPTIONS
from siyu_shared.kafka.runner import BatchHandling
from siyu_shared.logging import get_logger
from siyu_shared.service import ConsumerSpec, Runtime, ServiceSpec

MIGRATIONS = Path(__file__).parent / "migrations"
Clock = Callable[[], datetime]
log = get_logger(__name__)


def system_clock() -> datetime:
    return datetime.now(UTC)


def _batch_handling(books_: Books, now: Clock) -> BatchHandling:
    """Every consumed type through the batch handler (runs of orders and touches set-wise, the rest in order)."""
    one_by_one = event_handlers(books_, now)
    return BatchHandling(types=frozenset(one_by_one), handler=batch_handler(books_, one_by_one))


def build_spec(
    settings: AttributionSettings | None = None, *, clock: Clock | None = None, **overrides: Any
) -> ServiceSpec:
    """The service as configured by the environment, or by ``settings`` / keyword overrides (tests, tools).

    ``clock`` is the service's notion of now (claims, period closes, holding periods); tests pass a fixed one.
    """
    settings = settings or AttributionSettings(**overrides)
    now = clock or system_clock
    books_ = Books(topics=settings.topics)

    async def settle_loop(runtime: Runtime, stop: asyncio.Event) -> None:
        """Orders whose holding period ran out become payable, without waiting for the next event."""
        while not stop.is_set():
            try:
                async with unit_of_work(runtime.sessions) as session:
                    settled = await accounting.settle_due(session, books_, now=now())
                if settled:
                    log.info("orders_settled", count=settled)
            except Exception as exc:
                log.warning("settle_loop_error", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.settle_interval_s)

    return ServiceSpec(
        name="attribution",
        title="Siyu Attribution",
        description="Who earned each order, and a double-entry commission ledger that always balances.",
        settings=settings,
        migrations=MIGRATIONS,
        routers=(claims.router(books_, now), plans.router, ledger.router(books_, now), reports.router),
        consumers=(
            ConsumerSpec(
                name="main",
                topics=SUBSCRIPTIONS["attribution"]["main"],
                handlers=lambda runtime: {},
                batch=lambda runtime: _batch_handling(books_, now),
            ),
        ),
        background=(settle_loop,),
    )
