"""Migration 0005 keys the shares by order and fills the order of the shares already stored."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
import pytest
from alembic import command

from siyu_devstack.stack import Stack
from siyu_devstack.testing import service_spec
from siyu_shared.db.migrate import alembic_config
from siyu_shared.settings import to_libpq_url

pytestmark = pytest.mark.integration


async def test_shares_stored_before_the_migration_get_their_order(migrated: Stack) -> None:
    spec = service_spec("attribution", migrated)
    config = alembic_config(migrations=spec.migrations, url=spec.settings.database_url, schema=spec.schema)
    tenant = f"t{uuid4().hex[:8]}"
    conn = await asyncpg.connect(
        to_libpq_url(migrated.service_dsn("attribution")), server_settings={"search_path": "attribution"}
    )
    try:
        await asyncio.to_thread(command.downgrade, config, "attribution_0004")
        try:
            for order_id, attribution_id in (("o1", "a1"), ("o2", "a2")):
                await conn.execute(
                    "INSERT INTO attributions (tenant, attribution_id, order_id, model, plan_id, plan_version, cause,"
                    " decided_at) VALUES ($1, $2, $3, 'last_touch', 'default', 1, 'paid', now())",
                    tenant,
                    attribution_id,
                    order_id,
                )
                for position in (0, 1):
                    await conn.execute(
                        "INSERT INTO attribution_shares (tenant, attribution_id, position, payee_id, payee_role, kind,"
                        " basis, base_fen, gross_fen) VALUES ($1, $2, $3, 's1', 'staff_1v1', 'commission', 'b', 1, 1)",
                        tenant,
                        attribution_id,
                        position,
                    )
        finally:
            await asyncio.to_thread(command.upgrade, config, "head")
        rows = await conn.fetch(
            "SELECT order_id, attribution_id, position FROM attribution_shares WHERE tenant = $1 ORDER BY 2, 3", tenant
        )
        assert [tuple(r) for r in rows] == [("o1", "a1", 0), ("o1", "a1", 1), ("o2", "a2", 0), ("o2", "a2", 1)]
        key = await conn.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'attribution_shares_pkey'"
        )
        assert key == 'PRIMARY KEY (tenant, order_id, attribution_id, "position")'
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # still append-only
            await conn.execute("UPDATE attribution_shares SET base_fen = 2 WHERE tenant = $1", tenant)
    finally:
        await conn.close()
