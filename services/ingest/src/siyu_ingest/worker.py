"""The delivery worker: claims pending deliveries in received order and processes each in a savepoint.

Woken by ``NOTIFY <schema>_deliveries`` (a trigger on insert) with a short poll as the fallback. One processor
at a time holds the advisory lock, so a person's and an order's deliveries apply in the order received.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import asyncpg
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_ingest.adapters import deliveries
from siyu_ingest.adapters.deliveries import Delivery
from siyu_ingest.adapters.row_writes import RowWrites
from siyu_ingest.context import IngestContext
from siyu_ingest.domain.errors import BadSignature, Malformed, NotConfigured
from siyu_ingest.domain.models import Identifier
from siyu_ingest.identity_cache import OwnerCache, identifiers_of
from siyu_ingest.processing import Batch, apply_parsed, parse_delivery, process_delivery
from siyu_shared.db.engine import SessionFactory
from siyu_shared.db.health import DatabaseProbe, is_outage
from siyu_shared.logging import get_logger
from siyu_shared.messaging.outbox import add_to_outbox
from siyu_shared.service import BackgroundLoop, Runtime
from siyu_shared.settings import to_libpq_url

log = get_logger(__name__)
_EXPECTED = (Malformed, NotConfigured, BadSignature, ValidationError, ValueError, KeyError, TypeError)


async def process_round(sessions: SessionFactory, ctx: IngestContext, *, database: DatabaseProbe | None = None) -> int:
    """Process one batch of pending deliveries; returns how many were claimed.

    Fast path: the whole batch in one savepoint (``apply_batch``). If any delivery fails, the batch is rolled back
    to the savepoint and replayed one savepoint per delivery (``apply_one_by_one``), so it fails alone. An outage
    fails the round instead (nothing is marked; the worker retries with backoff): see ``apply_one_by_one``.
    """
    async with sessions() as session, session.begin():
        claimed = await deliveries.claim_pending(session, limit=ctx.settings.worker_batch)
        if not claimed:
            return 0
        try:
            async with session.begin_nested():
                await apply_batch(session, ctx, claimed)
            return len(claimed)
        except Exception as exc:
            log.info("delivery_batch_replayed_one_by_one", size=len(claimed), error=repr(exc)[:300])
        await apply_one_by_one(session, ctx, claimed, database=database)
        return len(claimed)


async def apply_batch(session: AsyncSession, ctx: IngestContext, claimed: Sequence[Delivery]) -> None:
    """Every delivery of the batch, set-wise where it can be: the identifiers the batch mentions are looked up in
    one query per tenant, persons, identifiers and leads are written in three statements, events and marks in
    bulk. Raises if any delivery fails (the caller rolls back and replays one by one)."""
    parsed = [await parse_delivery(session, ctx=ctx, delivery=d) for d in claimed]
    cache = await OwnerCache.start(session)
    by_tenant: dict[str, list[Identifier]] = {}
    for delivery, p in zip(claimed, parsed, strict=True):
        by_tenant.setdefault(delivery.tenant, []).extend(identifiers_of(p.facts))
    for tenant, found in by_tenant.items():
        keys = {i: ctx.vault.match_key(i.kind, i.value) for i in dict.fromkeys(found)}
        await cache.prefetch(session, tenant=tenant, keys=keys)
    events = []
    batch = Batch(cache, RowWrites(session))
    for delivery, p in zip(claimed, parsed, strict=True):
        events += await apply_parsed(session, ctx=ctx, delivery=delivery, parsed=p, batch=batch)
    await batch.writes.flush()
    await add_to_outbox(session, events, topics=ctx.settings.topics)
    await deliveries.mark_processed(session, delivery_ids=[d.id for d in claimed])


async def apply_one_by_one(
    session: AsyncSession, ctx: IngestContext, claimed: Sequence[Delivery], *, database: DatabaseProbe | None = None
) -> None:
    """Each delivery in a savepoint of its own: one that fails is marked failed with its error, alone.

    Unless the failure is an outage, by its class or by ``database`` not answering right after it: that is not the
    delivery's fault, so it is raised (the round rolls back and the deliveries stay pending), never marked failed.
    """
    done: list[int] = []
    for delivery in claimed:
        try:
            async with session.begin_nested():
                events = await process_delivery(session, ctx=ctx, delivery=delivery)
                await add_to_outbox(session, events, topics=ctx.settings.topics)
        except Exception as exc:
            if not isinstance(exc, _EXPECTED):
                if await is_outage(exc, database, since=time.monotonic()):
                    raise
                log.exception("delivery_crashed", delivery_id=delivery.id, channel=delivery.channel)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            log.info("delivery_failed", delivery_id=delivery.id, channel=delivery.channel, error=error)
            await deliveries.mark(session, delivery_id=delivery.id, status="failed", error=error)
        else:
            done.append(delivery.id)
    await deliveries.mark_processed(session, delivery_ids=done)


def delivery_worker(ctx: IngestContext) -> BackgroundLoop:
    async def run(runtime: Runtime, stop: asyncio.Event) -> None:
        wake = asyncio.Event()
        listener: asyncpg.Connection | None = None
        failures = 0
        try:
            while not stop.is_set():
                if listener is None or listener.is_closed():
                    listener = await _listen(runtime, wake)
                try:
                    claimed = await process_round(runtime.sessions, ctx, database=runtime.database)
                    failures = 0
                except Exception as exc:
                    failures += 1
                    log.warning("delivery_round_failed", error=repr(exc), failures=failures)
                    await _wait(stop, wake, min(5.0, 0.1 * 2**failures))
                    continue
                if claimed >= ctx.settings.worker_batch:
                    continue
                wake.clear()
                await _wait(stop, wake, ctx.settings.worker_poll_interval_s)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close(timeout=2)
            await ctx.close()

    return run


async def _listen(runtime: Runtime, wake: asyncio.Event) -> asyncpg.Connection | None:
    try:
        conn = await asyncpg.connect(
            to_libpq_url(runtime.settings.database_url),
            timeout=3,
            server_settings={"search_path": runtime.spec.schema, "application_name": "ingest-worker"},
        )
        await conn.add_listener(f"{runtime.spec.schema}_deliveries", lambda *_: wake.set())
        return conn
    except Exception as exc:
        log.info("delivery_listener_unavailable", error=repr(exc))
        return None


async def _wait(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
