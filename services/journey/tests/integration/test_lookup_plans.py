"""Batch lookups by key probe the index even on tables Postgres has no statistics for (a new deployment, a table
that just grew): planned as a join, such a lookup scanned the whole touches table for every batch of timers.

The tables are never-analysed temporary copies (``unanalysed_copies``) filled with enough rows that a scan is
much dearer than the probes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import TextClause

from siyu_devstack.stack import Stack
from siyu_devstack.testing import explain, unanalysed_copies
from siyu_journey.adapters.progress import ACTIVE_IN, RECENT_TOUCHES, TAKE_DUE
from siyu_journey.adapters.repository import PEOPLE_ROWS

pytestmark = pytest.mark.integration

ROWS = 20_000
KEYS = 500

_FILL = {
    "touches": f"""
        INSERT INTO touches (touch_id, tenant, enrolment_id, person_id, journey_id, version, step_id, occurrence,
                             channel, template, status, due_at, sent_at, created_at)
        SELECT 't' || i, 'acme', 'e' || i, 'p' || i, 'j', 1, 's', 1, 'wecom_1v1', 'hi', 'sent', now(), now(), now()
        FROM generate_series(1, {ROWS}) AS i
    """,
    "people": f"INSERT INTO people (tenant, person_id) SELECT 'acme', 'p' || i FROM generate_series(1, {ROWS}) AS i",
    "enrolments": f"""
        INSERT INTO enrolments (enrolment_id, tenant, journey_id, version, person_id, entry_key, status, step_id,
                                entered_at, updated_at)
        SELECT 'e' || i, 'acme', 'j', 1, 'p' || i, 'once', 'active', 's', now(), now()
        FROM generate_series(1, {ROWS}) AS i
    """,
    "timers": f"""
        INSERT INTO timers (timer_id, tenant, enrolment_id, step_id, due_at)
        SELECT i, 'acme', 'e' || i, 's', now() - interval '1 hour' FROM generate_series(1, {ROWS}) AS i
    """,
}


def _keys() -> dict[str, Any]:
    persons = [f"p{i * 37}" for i in range(1, KEYS + 1)]
    return {"ts": ["acme"] * KEYS, "js": ["j"] * KEYS, "ps": persons, "since": datetime(2026, 1, 1, tzinfo=UTC)}


@pytest.mark.parametrize(
    ("table", "statement"), [("touches", RECENT_TOUCHES), ("people", PEOPLE_ROWS), ("enrolments", ACTIVE_IN)]
)
async def test_batch_lookup_probes_the_index_without_statistics(
    journey_migrated: Stack, table: str, statement: TextClause
) -> None:
    async with unanalysed_copies(journey_migrated, "journey", {table: _FILL[table]}) as conn:
        plan = await explain(conn, statement, _keys())
        found = (await conn.execute(statement, _keys())).all()
    assert f"Seq Scan on {table}" not in plan, plan
    assert f"Index Scan using {table}_" in plan, plan  # the copy's indexes are named after the table
    assert len(found) == KEYS  # every key has one row in each table


async def test_claiming_a_backlog_looks_up_only_the_claimed_timers_enrolments(journey_migrated: Stack) -> None:
    """A backlog all due at once (after an outage), without statistics: a round picks its 1,000 timers, then probes
    their enrolments; it never joins every due timer to its enrolment to keep the first 1,000."""
    fills = {"timers": _FILL["timers"], "enrolments": _FILL["enrolments"]}
    params = {"now": datetime.now(UTC), "limit": 1000}
    async with unanalysed_copies(journey_migrated, "journey", fills) as conn:
        plan = await explain(conn, TAKE_DUE, params)
        claimed = (await conn.execute(TAKE_DUE, params)).all()
    assert "Join" not in plan.replace("Nested Loop", "") and "Seq Scan on enrolments" not in plan, plan
    assert "Index Scan using enrolments_pkey" in plan, plan
    assert len(claimed) == 1000
