"""Migration 0006 narrows the shares' payee index to commission shares, and its downgrade restores the full one."""

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


async def payee_indexes(conn: asyncpg.Connection) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'attribution'"
        " AND tablename = 'attribution_shares' AND indexname LIKE '%by_payee'"
    )
    return {r["indexname"]: r["indexdef"].split(" USING ", 1)[1] for r in rows}


async def test_the_payee_index_covers_commission_shares_and_downgrades_to_all(migrated: Stack) -> None:
    spec = service_spec("attribution", migrated)
    config = alembic_config(migrations=spec.migrations, url=spec.settings.database_url, schema=spec.schema)
    conn = await asyncpg.connect(
        to_libpq_url(migrated.service_dsn("attribution")), server_settings={"search_path": "attribution"}
    )
    try:
        assert await payee_indexes(conn) == {
            "commission_shares_by_payee": "btree (tenant, payee_id) WHERE ((kind)::text = 'commission'::text)"
        }
        await asyncio.to_thread(command.downgrade, config, "attribution_0005")
        try:
            assert await payee_indexes(conn) == {"shares_by_payee": "btree (tenant, payee_id)"}
        finally:
            await asyncio.to_thread(command.upgrade, config, "head")
        assert list(await payee_indexes(conn)) == ["commission_shares_by_payee"]
        # The month-to-date figures' filter, as a generic plan would see it, still reaches the index.
        await conn.execute("SET enable_seqscan = off")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        plan = await conn.fetch(
            "EXPLAIN SELECT payee_id, sum(base_fen) FROM attribution_shares"
            " WHERE tenant = $1 AND payee_id = ANY($2::text[]) AND kind = 'commission' GROUP BY payee_id",
            "t",
            ["s1"],
        )
        assert any("commission_shares_by_payee" in r[0] for r in plan)
    finally:
        await conn.close()
