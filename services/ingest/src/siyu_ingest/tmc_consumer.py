"""The TMC consumer loop (worker role): polls every tenant that has TMC credentials and feeds the same parser."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import select

from siyu_ingest.adapters import deliveries
from siyu_ingest.adapters.tables import channel_credentials
from siyu_ingest.adapters.tmc import TmcClient, as_delivery_body
from siyu_ingest.context import IngestContext
from siyu_ingest.metrics import REFUSED_DELIVERIES
from siyu_shared.logging import get_logger
from siyu_shared.service import BackgroundLoop, Runtime
from siyu_shared.values import unstorable

log = get_logger(__name__)
ORIGIN = {"x-siyu-origin": "tmc"}
"""Provenance of a polled message, for whoever reads the row: nothing decides anything by it, and the webhook route
never keeps this header from a caller (no adapter lists it among the headers it keeps)."""


async def tmc_tenants(runtime: Runtime, ctx: IngestContext) -> list[tuple[str, dict[str, Any]]]:
    """Tenants whose tmall credentials enable the TMC feed (API-configured ones, then the demo file)."""
    async with runtime.sessions() as session:
        tenants = (
            await session.execute(select(channel_credentials.c.tenant).where(channel_credentials.c.channel == "tmall"))
        ).scalars()
        found: list[tuple[str, dict[str, Any]]] = []
        for tenant in [*tenants, *ctx.credentials.file_tenants("tmall")]:
            creds = await ctx.credentials.get(session, tenant=tenant, channel="tmall")
            if creds and creds.get("tmc_app_key") and creds.get("tmc_app_secret") and tenant not in dict(found):
                found.append((tenant, dict(creds)))
    return found


async def poll_once(runtime: Runtime, ctx: IngestContext, client: TmcClient) -> int:
    """One consume → store → confirm round over every TMC tenant; returns how many messages were stored."""
    stored = 0
    for tenant, creds in await tmc_tenants(runtime, ctx):
        messages = await client.consume(creds)
        if not messages:
            continue
        async with runtime.sessions() as session, session.begin():
            for message in messages:
                row = storable_row(message)
                if isinstance(row, str):
                    # Never storable, so never worth a redelivery: confirmed with the rest, or it would come back
                    # in every batch and fail the whole transaction each time.
                    log.warning("tmc_message_unstorable", tenant=tenant, reason=row)
                    REFUSED_DELIVERIES.labels("tmall").inc()
                    continue
                dedupe_key, body = row
                await deliveries.store(
                    session,
                    tenant=tenant,
                    channel="tmall",
                    dedupe_key=dedupe_key,
                    body=body,
                    headers=ORIGIN,
                    query={},
                )
        # Confirmed only once durable: a crash in between means a redelivery, which the dedupe absorbs.
        await client.confirm(creds, [str(m.get("id")) for m in messages])
        stored += len(messages)
    return stored


def storable_row(message: dict[str, Any]) -> tuple[str, bytes] | str:
    """(dedupe key, body) of a polled message, or why it cannot be stored: a NUL in its id (a ``text`` column), or a
    body that cannot be encoded (an integer beyond 64 bits). The body itself is ``bytea``, so what it holds is the
    parser's to judge, as for a relayed message."""
    dedupe_key = str(message.get("id"))[:200]
    reason = unstorable(dedupe_key, where="the TMC message id")
    if reason:
        return reason
    try:
        return dedupe_key, as_delivery_body(message)
    except TypeError as exc:  # orjson: "Integer exceeds 64-bit range"
        return f"the TMC message cannot be encoded: {exc}"


def tmc_loop(ctx: IngestContext) -> BackgroundLoop:
    async def run(runtime: Runtime, stop: asyncio.Event) -> None:
        client = TmcClient(timeout_s=ctx.settings.tmc_timeout_s)
        try:
            while not stop.is_set():
                try:
                    got = await poll_once(runtime, ctx, client)
                except Exception as exc:
                    log.warning("tmc_poll_failed", error=repr(exc))
                    got = 0
                if not got:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), ctx.settings.tmc_poll_interval_s)
        finally:
            await client.close()

    return run
