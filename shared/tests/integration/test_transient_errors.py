"""Contention between transactions is retried like an outage, never dead-lettered; a bad event's error is not."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from siyu_devstack.testing import Scratch
from siyu_shared.db.engine import unit_of_work
from siyu_shared.kafka.errors import is_infrastructure_failure

pytestmark = pytest.mark.integration


async def _lock_in_order(scratch: Scratch, first: int, second: int, both_hold_one: asyncio.Barrier) -> None:
    async with unit_of_work(scratch.sessions) as session:
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": first})
        await both_hold_one.wait()
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": second})


async def test_a_deadlock_is_transient_a_bad_value_is_not(scratch: Scratch) -> None:
    both_hold_one = asyncio.Barrier(2)
    outcomes = await asyncio.gather(
        _lock_in_order(scratch, 1, 2, both_hold_one),
        _lock_in_order(scratch, 2, 1, both_hold_one),
        return_exceptions=True,
    )
    (deadlock,) = [o for o in outcomes if isinstance(o, BaseException)]  # Postgres broke the cycle in one of them
    assert "deadlock" in str(deadlock).lower()
    assert is_infrastructure_failure(deadlock)

    with pytest.raises(Exception) as bad_value:
        async with unit_of_work(scratch.sessions) as session:
            await session.execute(text("SELECT CAST('not a number' AS integer)"))
    assert not is_infrastructure_failure(bad_value.value)
