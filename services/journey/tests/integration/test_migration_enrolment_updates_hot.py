"""Migration 0005 takes ``status`` out of the enrolments' indexes and leaves room on each page, so an enrolment's
update (its status included) is HOT; its downgrade restores the indexes with the status and the full pages."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from alembic import command

from siyu_devstack.stack import Stack
from siyu_devstack.testing import service_spec
from siyu_shared.db.migrate import alembic_config
from siyu_shared.settings import to_libpq_url

pytestmark = pytest.mark.integration


async def enrolment_indexes(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'journey' AND tablename = 'enrolments'"
        " AND indexname IN ('enrolments_person', 'enrolments_journey')"
    )
    return {r["indexname"]: r["indexdef"].split(" USING ", 1)[1] for r in rows}


async def enrolment_options(conn: asyncpg.Connection) -> list[str]:
    return list(
        await conn.fetchval(
            "SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = 'journey.enrolments'::regclass"
        )
    )


async def update_counts(conn: asyncpg.Connection) -> tuple[int, int]:
    """(updates, HOT updates) of enrolments this backend counted, this transaction's included."""
    row = await conn.fetchrow(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = 'journey.enrolments'::regclass"
    )
    assert row is not None
    return int(row[0]), int(row[1])


async def test_enrolment_updates_are_hot_and_the_downgrade_restores_the_status_indexes(
    journey_migrated: Stack,
) -> None:
    spec = service_spec("journey", journey_migrated)
    config = alembic_config(migrations=spec.migrations, url=spec.settings.database_url, schema=spec.schema)
    conn = await asyncpg.connect(
        to_libpq_url(journey_migrated.service_dsn("journey")), server_settings={"search_path": "journey"}
    )
    try:
        assert await enrolment_indexes(conn) == {
            "enrolments_person": "btree (tenant, person_id)",
            "enrolments_journey": "btree (tenant, journey_id)",
        }
        assert await enrolment_options(conn) == ["fillfactor=50"]
        # An enrolment entered, then completed: the update changes its status and is HOT.
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO enrolments (enrolment_id, tenant, journey_id, version, person_id, entry_key, status,"
                " step_id, entered_at, updated_at)"
                " VALUES ('hot-1', 'hot-tenant', 'j', 1, 'p1', 'once', 'active', 'wait', now(), now())"
            )
            before = await update_counts(conn)
            await conn.execute(
                "UPDATE enrolments SET status = 'completed', step_id = NULL WHERE enrolment_id = 'hot-1'"
            )
            after = await update_counts(conn)
        assert (after[0] - before[0], after[1] - before[1]) == (1, 1)  # (updates, of which HOT)
        await conn.execute("DELETE FROM enrolments WHERE enrolment_id = 'hot-1'")

        await asyncio.to_thread(command.downgrade, config, "journey_0004")
        try:
            assert await enrolment_indexes(conn) == {
                "enrolments_person": "btree (tenant, person_id, status)",
                "enrolments_journey": "btree (tenant, journey_id, status)",
            }
            assert await enrolment_options(conn) == []
        finally:
            await asyncio.to_thread(command.upgrade, config, "head")
        assert await enrolment_options(conn) == ["fillfactor=50"]
    finally:
        await conn.close()
