"""The engine's pool: a pooled connection that died is replaced when it is checked out."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from siyu_devstack.testing import Scratch
from siyu_shared.db.engine import create_engine

pytestmark = pytest.mark.integration


async def test_a_pooled_connection_that_died_is_replaced_on_checkout(scratch: Scratch) -> None:
    engine = create_engine(scratch.url, schema=scratch.schema, pool_size=1)
    try:
        async with engine.connect() as conn:
            dead = await conn.scalar(text("SELECT pg_backend_pid()"))
        async with scratch.engine.connect() as admin:
            assert await admin.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": dead})
        async with engine.connect() as conn:  # no error: the ping on checkout found it dead and replaced it
            assert await conn.scalar(text("SELECT pg_backend_pid()")) != dead
            assert await conn.scalar(text("SELECT current_schema()")) == scratch.schema
    finally:
        await engine.dispose()
