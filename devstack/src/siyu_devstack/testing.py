"""Helpers for tests that run against the real stack: a service in-process, a scratch schema, read a topic, wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import import_module
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from sqlalchemy import BigInteger, Column, MetaData, String, Table, TextClause, TextualSelect, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from siyu_devstack.stack import Stack
from siyu_shared.app import create_app
from siyu_shared.db.engine import SessionFactory, create_engine
from siyu_shared.db.migrate import upgrade
from siyu_shared.db.platform_tables import add_platform_tables
from siyu_shared.events.topics import TopicNames
from siyu_shared.service import Role, ServiceSpec
from siyu_shared.services import SERVICES

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
    return await read_topics(bootstrap, [topic], idle_s=idle_s)


async def read_topics(bootstrap: str, topics: Sequence[str], *, idle_s: float = 1.5) -> list[Message]:
    """Everything on ``topics`` from the beginning, read with one consumer until nothing new for ``idle_s``."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
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


def service_spec(service: str, stack: Stack, *, topic_prefix: str | None = None, **overrides: Any) -> ServiceSpec:
    """The service's spec pointed at the stack (its own role and schema), with settings overrides for the test."""
    build_spec = import_module(f"siyu_{service}.bootstrap").build_spec
    spec: ServiceSpec = build_spec(
        database_url=stack.service_dsn(service),
        kafka_bootstrap_servers=stack.bootstrap_servers,
        kafka_topic_prefix=stack.topic_prefix if topic_prefix is None else topic_prefix,
        **overrides,
    )
    return spec


def migrate_all(stack: Stack) -> None:
    """Apply every service's migrations (blocking: call through ``asyncio.to_thread`` from async code)."""
    for service in SERVICES:
        spec = service_spec(service, stack)
        upgrade(migrations=spec.migrations, url=spec.settings.database_url, schema=spec.schema)


@asynccontextmanager
async def running_service(
    service: str, stack: Stack, *, topic_prefix: str, role: Role = "all", **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The service running in this process (lifespan started: consumers, relay, loops) and an HTTP client to it.

    Use with the ``migrated`` and ``topic_prefix`` fixtures of ``siyu_devstack.pytest_plugin``.
    """
    app = create_app(service_spec(service, stack, topic_prefix=topic_prefix, **overrides), role=role)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{service}.test") as client:
            yield app, client


@asynccontextmanager
async def unanalysed_copies(
    stack: Stack, schema: str, fills: Mapping[str, str | None]
) -> AsyncIterator[AsyncConnection]:
    """A connection (the superuser's: service roles may not create temporary tables) on which each table of
    ``fills`` is a temporary copy of ``schema``'s (``LIKE … INCLUDING ALL``, so the same indexes), filled by its SQL
    (``None``: left empty). Temporary tables come first on the search path and are never analysed by autovacuum:
    statements on them are planned as on a new or fast-growing table, without statistics. Rolled back at the end."""
    engine = create_engine(stack.admin_dsn, schema=schema, pool_size=1)
    try:
        async with engine.connect() as conn:
            for table, fill in fills.items():
                await conn.execute(text(f"CREATE TEMP TABLE {table} (LIKE {schema}.{table} INCLUDING ALL)"))
                if fill:
                    await conn.execute(text(fill))
            try:
                yield conn
            finally:
                await conn.rollback()
    finally:
        await engine.dispose()


async def explain(conn: AsyncConnection, statement: TextClause | TextualSelect, params: Mapping[str, Any]) -> str:
    """The plan Postgres chooses for a textual ``statement`` with ``params`` (``EXPLAIN``, not run)."""
    return "\n".join((await conn.execute(text(f"EXPLAIN {statement}"), dict(params))).scalars())
