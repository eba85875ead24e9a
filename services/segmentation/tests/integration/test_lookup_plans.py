"""The batch handler's statements reach a batch's rows through the (tenant, key) indexes even on tables Postgres has
no statistics for (a new deployment, a tenant new since the last ANALYZE): planned as a join, a lookup by key reads
every row of the tenant for each batch.

The tables here are temporary copies (``LIKE ... INCLUDING ALL``), which autovacuum never analyses, filled with
enough rows of the batch's tenant that reading them all is much dearer than the probes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Executable, text
from sqlalchemy.ext.asyncio import AsyncConnection

from siyu_devstack.stack import Stack
from siyu_segmentation.adapters import bulk
from siyu_shared.db.engine import create_engine

pytestmark = pytest.mark.integration

ROWS = 20_000
KEYS = 300
PERSONS = sorted(f"p{i * 37}" for i in range(1, KEYS + 1))

_FILL = {
    "profiles": "INSERT INTO profiles (tenant, person_id) SELECT 'acme', 'p' || i FROM generate_series(1, :n) AS i",
    "person_tags": """
        INSERT INTO person_tags (tenant, person_id, tag, rule_id, rule_version, tagged_at)
        SELECT 'acme', 'p' || (i / 3), 't' || (i % 3), 'r', 1, now() FROM generate_series(1, :n) AS i
    """,
    "order_facts": """
        INSERT INTO order_facts (tenant, order_id, person_id, paid_at, amount_fen)
        SELECT 'acme', 'o' || i, 'p' || i, now(), 10000 FROM generate_series(1, :n) AS i
    """,
    "order_refunds": "INSERT INTO order_refunds (tenant, refund_id, order_id) "
    "SELECT 'acme', 'r' || i, 'o' || i FROM generate_series(1, :n) AS i",
    "touch_facts": """
        INSERT INTO touch_facts (tenant, touch_id, person_id, occurred_at, channel, status)
        SELECT 'acme', 't' || i, 'p' || i, now(), 'wecom_1v1', 'sent' FROM generate_series(1, :n) AS i
    """,
    "outbox": None,
}


async def _copies(conn: AsyncConnection) -> None:
    """Temporary tables of the same names come first on the search path, with the same indexes."""
    for table, fill in _FILL.items():
        await conn.execute(text(f"CREATE TEMP TABLE {table} (LIKE segmentation.{table} INCLUDING ALL)"))
        if fill:
            await conn.execute(text(fill), {"n": ROWS})


async def _plan(conn: AsyncConnection, statement: Executable, params: dict[str, Any]) -> str:
    return "\n".join((await conn.execute(text(f"EXPLAIN {statement}"), params)).scalars())


def _reads_by_key(plan: str, table: str, key: str) -> None:
    """No scan of ``table`` reads the tenant's rows whole: every condition on the tenant names the key too."""
    assert f"Seq Scan on {table}" not in plan, plan
    conditions = [line for line in plan.splitlines() if "Cond:" in line and "tenant" in line]
    assert conditions, plan
    assert all(key in line for line in conditions), plan


async def test_refunds_probe_their_orders_by_key_without_statistics(migrated: Stack) -> None:
    # The superuser: the service roles may not create temporary tables.
    engine = create_engine(migrated.admin_dsn, schema="segmentation", pool_size=1)
    refunds = [
        {"order_id": f"o{i * 37}", "refund_id": f"x{i}", "amount_fen": 2500, "full": False} for i in range(1, KEYS + 1)
    ]
    refunds.append({"order_id": "o-unknown", "refund_id": "x-unknown", "amount_fen": 100, "full": False})
    params = {"tenant": "acme", "rows": bulk._json(refunds)}
    try:
        async with engine.connect() as conn:
            await _copies(conn)
            plan = await _plan(conn, bulk._APPLY_REFUNDS, params)
            await conn.execute(bulk._APPLY_REFUNDS, params)
            refunded = (
                await conn.execute(text("SELECT count(*), sum(refunded_fen) FROM order_facts WHERE refunded_fen > 0"))
            ).one()
            recorded = await conn.scalar(text("SELECT count(*) FROM order_refunds WHERE refund_id LIKE 'x%'"))
            await conn.rollback()
    finally:
        await engine.dispose()
    _reads_by_key(plan, "order_facts", "order_id")
    assert tuple(refunded) == (KEYS, KEYS * 2500)
    assert recorded == KEYS  # the unknown order's refund is not recorded


async def test_batch_reads_and_writes_probe_by_person_without_statistics(migrated: Stack) -> None:
    """The locked read of the profiles, the round's facts and tags, and the tag writes: by person, never the
    tenant's rows whole."""
    engine = create_engine(migrated.admin_dsn, schema="segmentation", pool_size=1)
    now = datetime.now(UTC)
    added = [
        {"person_id": p, "tag": "t2", "rule_id": "r", "rule_version": 1, "tagged_at": now, "facts": {}} for p in PERSONS
    ]
    changes = {
        "tenant": "acme",
        "del_persons": PERSONS,
        "del_tags": ["t1"] * KEYS,
        "added": bulk._json(added),
        "rs_persons": PERSONS,
        "rs_tags": ["t0"] * KEYS,
        "rs_rule_ids": ["r"] * KEYS,
        "rs_versions": [2] * KEYS,
        "topic": "tags",
        "event_type": "siyu.tags.changed",
        "headers": "{}",
        "ids": [f"e-{p}" for p in PERSONS],
        "keys": PERSONS,
        "payloads": [b"{}"] * KEYS,
    }
    try:
        async with engine.connect() as conn:
            await _copies(conn)
            lock = await _plan(conn, bulk._LOCK_PROFILES, {"tenant": "acme", "persons": PERSONS})
            load = await _plan(conn, bulk._load_round(True, True, True), {"tenant": "acme", "persons": PERSONS})
            write = await _plan(conn, bulk._WRITE_CHANGES, changes)
            await conn.rollback()
    finally:
        await engine.dispose()
    _reads_by_key(lock, "profiles", "person_id")
    for table in ("order_facts", "touch_facts", "person_tags"):
        assert f"Seq Scan on {table}" not in load, load
    _reads_by_key(load, "order_facts", "person_id")
    _reads_by_key(write, "person_tags", "person_id")
