"""Channel credentials per tenant: the database (admin API) first, then the demo config file; cached briefly."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import yaml
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_ingest.adapters.tables import channel_credentials
from siyu_ingest.adapters.vault import Vault
from siyu_shared.db.engine import SessionFactory


def load_channels_file(path: Path | None) -> dict[tuple[str, str], dict[str, Any]]:
    """``{tenant: {channel: {field: value}}}`` from YAML or JSON; empty when no file is configured."""
    if path is None:
        return {}
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping of tenants")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for tenant, channels in document.items():
        for channel, creds in (channels or {}).items():
            out[(str(tenant), str(channel))] = dict(creds or {})
    return out


class CredentialStore:
    def __init__(self, *, vault: Vault, file_entries: dict[tuple[str, str], dict[str, Any]], ttl_s: float) -> None:
        self._vault = vault
        self._file = file_entries
        self._ttl = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[dict[str, Any] | None]] = {}
        self._changes = 0

    def forget(self, tenant: str, channel: str) -> None:
        self._changes += 1
        self._cache.pop((tenant, channel), None)
        self._loading.pop((tenant, channel), None)  # a read begun before the change must not be shared after it

    def file_tenants(self, channel: str) -> list[str]:
        return sorted(t for t, c in self._file if c == channel)

    def cached(self, *, tenant: str, channel: str) -> tuple[bool, dict[str, Any] | None]:
        """(hit, credentials) from the in-process cache, without touching the database."""
        hit = self._cache.get((tenant, channel))
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    async def load(self, sessions: SessionFactory, *, tenant: str, channel: str) -> dict[str, Any] | None:
        """Cached, else read once: the requests that miss the cache together (every TTL under load) share one
        database read instead of each opening a session of its own."""
        hit, creds = self.cached(tenant=tenant, channel=channel)
        if hit:
            return creds
        key = (tenant, channel)
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._read(sessions, key))
            self._loading[key] = loading
            loading.add_done_callback(lambda done: self._done_loading(key, done))
        return await asyncio.shield(loading)

    async def _read(self, sessions: SessionFactory, key: tuple[str, str]) -> dict[str, Any] | None:
        async with sessions() as session:
            return await self.get(session, tenant=key[0], channel=key[1])

    def _done_loading(self, key: tuple[str, str], done: asyncio.Future[dict[str, Any] | None]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # retrieved: the waiters got it (a 503), the loop need not log it

    async def get(self, session: AsyncSession, *, tenant: str, channel: str) -> dict[str, Any] | None:
        key = (tenant, channel)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        changes = self._changes
        row = (
            await session.execute(
                select(channel_credentials.c.secrets_enc, channel_credentials.c.options).where(
                    channel_credentials.c.tenant == tenant, channel_credentials.c.channel == channel
                )
            )
        ).first()
        creds: dict[str, Any] | None
        if row is not None:
            secrets = orjson.loads(self._vault.open(row.secrets_enc, context=f"{tenant}/{channel}".encode()))
            creds = {**dict(row.options), **secrets}
        else:
            creds = self._file.get(key)
        if changes == self._changes:  # not cached when a change came while reading (it may predate the change)
            self._cache[key] = (now + self._ttl, creds)
        return creds

    async def put(
        self, session: AsyncSession, *, tenant: str, channel: str, secrets: dict[str, str], options: dict[str, Any]
    ) -> None:
        sealed = self._vault.seal(orjson.dumps(secrets), context=f"{tenant}/{channel}".encode())
        stmt = pg_insert(channel_credentials).values(
            tenant=tenant, channel=channel, secrets_enc=sealed, options=options
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant", "channel"],
                set_={"secrets_enc": sealed, "options": options, "updated_at": stmt.excluded.updated_at},
            )
        )
        self.forget(tenant, channel)

    async def remove(self, session: AsyncSession, *, tenant: str, channel: str) -> bool:
        result = await session.execute(
            delete(channel_credentials).where(
                channel_credentials.c.tenant == tenant, channel_credentials.c.channel == channel
            )
        )
        self.forget(tenant, channel)
        return bool(getattr(result, "rowcount", 0))

    async def configured(self, session: AsyncSession, *, tenant: str) -> list[dict[str, Any]]:
        rows = (
            await session.execute(
                select(channel_credentials.c.channel, channel_credentials.c.options, channel_credentials.c.updated_at)
                .where(channel_credentials.c.tenant == tenant)
                .order_by(channel_credentials.c.channel)
            )
        ).all()
        listed = [{"channel": r.channel, "options": dict(r.options), "from": "api"} for r in rows]
        seen = {r.channel for r in rows}
        listed += [
            {"channel": channel, "options": {}, "from": "file"}
            for (t, channel) in sorted(self._file)
            if t == tenant and channel not in seen
        ]
        return listed
