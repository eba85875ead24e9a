"""Helpers for tests that run against the real stack: a scratch schema, read a topic, wait for a condition."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer
from sqlalchemy import BigInteger, Column, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine

from siyu_shared.db.engine import SessionFactory
from siyu_shared.db.platform_tables import add_platform_tables
from siyu_shared.events.topics import TopicNames

T = TypeVar("T")
Message = tuple[bytes | None, bytes, dict[str, bytes]]

scratch_metadata = MetaData()
add_platform_tables(scratch_metadata)
effects = Table(
    "effects",
    scratch_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", String(200), nullable=False),
    Column("person_id", String(64)),
)
"""A record of every handler effect, so a test can count how many times an event took effect."""


@dataclass
class Scratch:
    """A throwaway schema (platform tables + ``effects``) and a private topic prefix for one test."""

    schema: str
    url: str
    engine: AsyncEngine
    sessions: SessionFactory
    topics: TopicNames
    bootstrap: str


async def read_topic(bootstrap: str, topic: str, *, idle_s: float = 1.5) -> list[Message]:
    """Everything on a topic from the beginning (key, value, headers), read until nothing new for ``idle_s``."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[Message] = []
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=int(idle_s * 1000))
            if not batches:
                return out
            for records in batches.values():
                out += [(r.key, r.value, dict(r.headers or ())) for r in records]
    finally:
        await consumer.stop()


async def eventually(probe: Callable[[], Awaitable[T]], *, timeout_s: float = 20.0, interval_s: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy; fail with its last value after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last value: {value!r})")
        await asyncio.sleep(interval_s)
