"""The credential cache: concurrent misses share one database read; a change during a read is not cached over."""

from __future__ import annotations

import asyncio
from typing import Any

from siyu_ingest.adapters.credentials import CredentialStore
from siyu_ingest.adapters.vault import Vault
from siyu_ingest.settings import IngestSettings

BASE = {"database_url": "postgresql://u@h/d", "kafka_bootstrap_servers": "k:9092"}


class _Result:
    def first(self) -> None:
        return None  # nothing in the table: the demo file answers


class _Session:
    def __init__(self, gate: asyncio.Event, opened: list[int], entered: asyncio.Event | None = None) -> None:
        self.gate, self.opened, self.entered = gate, opened, entered or asyncio.Event()

    async def __aenter__(self) -> _Session:
        self.opened.append(1)
        self.entered.set()
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def execute(self, *_: Any) -> _Result:
        await self.gate.wait()
        return _Result()


def _store(file: dict[tuple[str, str], dict[str, Any]]) -> CredentialStore:
    return CredentialStore(vault=Vault.from_settings(IngestSettings(**BASE)), file_entries=file, ttl_s=60)


async def test_concurrent_misses_share_one_read() -> None:
    store = _store({("t", "douyin"): {"client_secret": "s"}})
    gate, opened = asyncio.Event(), []
    loads = [
        asyncio.create_task(store.load(lambda: _Session(gate, opened), tenant="t", channel="douyin"))  # type: ignore[arg-type, return-value]
        for _ in range(50)
    ]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*loads) == [{"client_secret": "s"}] * 50
    assert len(opened) == 1
    assert store.cached(tenant="t", channel="douyin") == (True, {"client_secret": "s"})


async def test_a_change_during_the_read_is_not_cached_over() -> None:
    store = _store({("t", "douyin"): {"client_secret": "old"}})
    gate, opened, entered = asyncio.Event(), [], asyncio.Event()
    load = asyncio.create_task(store.load(lambda: _Session(gate, opened, entered), tenant="t", channel="douyin"))  # type: ignore[arg-type, return-value]
    await entered.wait()  # the read is under way
    store.forget("t", "douyin")  # what put()/remove() do after a change
    gate.set()
    await load
    assert store.cached(tenant="t", channel="douyin") == (False, None)
