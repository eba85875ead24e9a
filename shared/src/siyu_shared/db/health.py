"""Is the database up? Asked after a failure whose exception alone does not say.

A driver reports an outage under many classes: a restart under load gives ``the database system is shutting down``
wrapped in a plain ``DBAPIError``, an ``InternalClientError`` from a connection cut mid-protocol, a
``PendingRollbackError`` from a session whose connection died. Matching classes misses some of them, and a missed
outage turns a good event into a dead letter or a good request into a 500. So the consumer runner, the app's
``StorageFailures`` middleware and ingest's delivery worker ask the dependency instead (:func:`is_outage`): a
fresh connection (never one from the pool, which may hold survivors of the old server) running ``SELECT 1``.
If that fails, the database is down and the failure was not the event's or the request's fault.

Probes are coalesced, so hundreds of failing requests a second cost a handful of connection attempts: one probe
at a time, and every failure is answered by a probe that started after it (a healthy answer from before a
failure says nothing about it), joining the next one when one is in flight. Only a "down" answer is reused for
failures up to ``reuse_s`` after its probe started: during an outage that is the common case.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import asyncpg

from siyu_shared.kafka.errors import is_infrastructure_failure
from siyu_shared.logging import get_logger
from siyu_shared.settings import to_libpq_url

log = get_logger(__name__)


@dataclass(slots=True)
class _Probe:
    started: float
    task: asyncio.Task[bool]


class DatabaseProbe:
    """``healthy()``: whether a fresh connection to ``url`` answers ``SELECT 1`` within ``timeout_s``."""

    def __init__(self, url: str, *, timeout_s: float = 2.0, reuse_s: float = 0.2) -> None:
        self._url = to_libpq_url(url)
        self._timeout_s = timeout_s
        self._reuse_s = reuse_s
        self._last: _Probe | None = None

    async def healthy(self, *, since: float | None = None) -> bool:
        """Whether the database answers, asked about a failure seen at ``since`` (``time.monotonic()``, default
        now)."""
        asked = time.monotonic() if since is None else since
        while True:
            last = self._last
            if last is not None and last.started >= asked:
                return await asyncio.shield(last.task)
            if last is not None and not last.task.done():
                await asyncio.wait([last.task])  # one probe at a time: the next starts when this one ends
                continue
            if last is not None and last.started >= asked - self._reuse_s and not last.task.result():
                return False
            self._last = _Probe(time.monotonic(), asyncio.ensure_future(self._probe()))

    async def wait_until_healthy(
        self, stop: asyncio.Event, *, first_delay_s: float = 0.2, max_delay_s: float = 5.0
    ) -> bool:
        """Probe with backoff until the database answers (True) or ``stop`` is set (False)."""
        delay = first_delay_s
        while not stop.is_set():
            if await self.healthy():
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(max_delay_s, delay * 2)
        return False

    async def _probe(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout_s):
                conn = await asyncpg.connect(self._url, server_settings={"application_name": "siyu-probe"})
                try:
                    await conn.fetchval("SELECT 1")
                finally:
                    await conn.close(timeout=self._timeout_s)
        except Exception as exc:
            log.info("database_probe_failed", error=repr(exc)[:300])
            return False
        return True


async def is_outage(exc: BaseException, database: DatabaseProbe | None, *, since: float | None = None) -> bool:
    """Whether ``exc`` was an outage rather than the fault of what was being done: by its class, or because
    ``database`` does not answer a probe started after the failure (seen at ``since``, default now)."""
    if is_infrastructure_failure(exc):
        return True
    return database is not None and not await database.healthy(since=since)
