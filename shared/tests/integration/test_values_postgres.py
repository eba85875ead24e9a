"""What the shared values accept, Postgres stores: times (also as text with their offset, the way a consumer's SQL
hands them over), text in ``text`` and ``jsonb``, and integers in ``bigint``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from siyu_devstack.stack import Stack
from siyu_shared.settings import to_libpq_url
from siyu_shared.values import Int64, Text, Timestamp

pytestmark = pytest.mark.integration

offsets = st.integers(-86399, 86399).map(lambda s: timezone(timedelta(seconds=s)))
moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets)


def _accepted(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


async def _store(dsn: str, moment: datetime | None, text: str | None, number: int | None) -> None:
    conn = await asyncpg.connect(to_libpq_url(dsn))
    try:
        if moment is not None:
            stored = await conn.fetchval("SELECT $1::text::timestamptz", moment.isoformat())
            assert stored == moment.astimezone(UTC)
            assert await conn.fetchval("SELECT $1::timestamptz", moment) == moment
        if text is not None:
            assert await conn.fetchval("SELECT $1::text", text) == text
            assert orjson.loads(await conn.fetchval("SELECT $1::jsonb::text", orjson.dumps({text: text}).decode()))
        if number is not None:
            assert await conn.fetchval("SELECT $1::bigint", number) == number
    finally:
        await conn.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moment=moments, text=st.text(max_size=40), number=st.integers(min_value=-(2**70), max_value=2**70))
def test_every_accepted_value_is_stored_by_postgres(stack: Stack, moment: datetime, text: str, number: int) -> None:
    # Ordinary values are accepted, so the property is not met by types that refuse everything.
    assert _accepted(TypeAdapter(Timestamp), datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8))))
    assert _accepted(TypeAdapter(Text), "小完子 xwz_01") and _accepted(TypeAdapter(Int64), 2**63 - 1)
    asyncio.run(
        _store(
            stack.admin_dsn,
            moment if _accepted(TypeAdapter(Timestamp), moment) else None,
            text if _accepted(TypeAdapter(Text), text) else None,
            number if _accepted(TypeAdapter(Int64), number) else None,
        )
    )
