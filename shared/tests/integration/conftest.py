"""Fixtures over the real local stack: a throwaway schema and topic prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from siyu_devstack.stack import Stack
from siyu_devstack.testing import Scratch, scratch_metadata
from siyu_devstack.topics import create_topics
from siyu_shared.db.engine import create_engine, session_factory
from siyu_shared.db.platform_tables import outbox_notify_ddl
from siyu_shared.events.topics import TopicNames
from siyu_shared.kafka.clients import idempotent_producer

pytestmark = pytest.mark.integration


@asynccontextmanager
async def scratch_schema(url: str, bootstrap: str, *, notify: bool = True) -> AsyncIterator[Scratch]:
    """A fresh schema on the server at ``url`` with the platform tables and an ``effects`` table (and the outbox's
    NOTIFY trigger unless ``notify`` is off), private topics on ``bootstrap``; the schema is dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url, schema=schema, pool_size=5)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.execute(text(f'SET search_path TO "{schema}"'))
        await conn.run_sync(scratch_metadata.create_all)
        for statement in outbox_notify_ddl() if notify else ():
            await conn.execute(text(statement))
    topics = TopicNames(f"{schema}.")
    await create_topics(bootstrap, topics.all(), partitions=3)
    try:
        yield Scratch(schema, url, engine, session_factory(engine), topics, bootstrap)
    finally:
        await engine.dispose()
        cleanup = create_engine(url, schema="public", pool_size=1)
        async with cleanup.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await cleanup.dispose()


@pytest.fixture
async def scratch(stack: Stack) -> AsyncIterator[Scratch]:
    """A schema with the platform tables and an `effects` table, and a private set of topics."""
    async with scratch_schema(stack.admin_dsn, stack.bootstrap_servers) as scratch:
        yield scratch


@pytest.fixture
async def producer(stack: Stack) -> AsyncIterator[AIOKafkaProducer]:
    p = idempotent_producer(stack.bootstrap_servers, client_id="test")
    await p.start()
    try:
        yield p
    finally:
        await p.stop()
