"""The batch handler's statements reach a batch's rows through the (tenant, key) indexes even on tables Postgres has
no statistics for (a new deployment, a tenant new since the last ANALYZE): planned as a join, a lookup by key reads
every row of the tenant for each batch.

The tables are never-analysed temporary copies (``unanalysed_copies``) filled with enough rows of the batch's tenant
that reading them all is much dearer than the probes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from siyu_devstack.stack import Stack
from siyu_devstack.testing import explain, unanalysed_copies
from siyu_segmentation.adapters import bulk

pytestmark = pytest.mark.integration

ROWS = 20_000
KEYS = 300
PERSONS = sorted(f"p{i * 37}" for i in range(1, KEYS + 1))

_FILL: dict[str, str | None] = {
    "profiles": "INSERT INTO profiles (tenant, person_id) "
    f"SELECT 'acme', 'p' || i FROM generate_series(1, {ROWS}) AS i",
    "person_tags": f"""
        INSERT INTO person_tags (tenant, person_id, tag, rule_id, rule_version, tagged_at)
        SELECT 'acme', 'p' || (i / 3), 't' || (i % 3), 'r', 1, now() FROM generate_series(1, {ROWS}) AS i
    """,
    "order_facts": f"""
        INSERT INTO order_facts (tenant, order_id, person_id, paid_at, amount_fen)
        SELECT 'acme', 'o' || i, 'p' || i, now(), 10000 FROM generate_series(1, {ROWS}) AS i
    """,
    "order_refunds": "INSERT INTO order_refunds (tenant, refund_id, order_id) "
    f"SELECT 'acme', 'r' || i, 'o' || i FROM generate_series(1, {ROWS}) AS i",
    "touch_facts": f"""
        INSERT INTO touch_facts (tenant, touch_id, person_id, occurred_at, channel, status)
        SELECT 'acme', 't' || i, 'p' || i, now(), 'wecom_1v1', 'sent' FROM generate_series(1, {ROWS}) AS i
    """,
    "outbox": None,
}


def _reads_by_key(plan: str, table: str, key: str) -> None:
    """No scan of ``table`` reads the tenant's rows whole: every condition on the tenant names the key too."""
    assert f"Seq Scan on {table}" not in plan, plan
    conditions = [line for line in plan.splitlines() if "Cond:" in line and "tenant" in line]
    assert conditions, plan
    assert all(key in line for line in conditions), plan


async def test_refunds_probe_their_orders_by_key_without_statistics(migrated: Stack) -> None:
    refunds = [
        {"order_id": f"o{i * 37}", "refund_id": f"x{i}", "amount_fen": 2500, "full": False} for i in range(1, KEYS + 1)
    ]
    refunds.append({"order_id": "o-unknown", "refund_id": "x-unknown", "amount_fen": 100, "full": False})
    params = {"tenant": "acme", "rows": bulk._json(refunds)}
    async with unanalysed_copies(migrated, "segmentation", _FILL) as conn:
        plan = await explain(conn, bulk._APPLY_REFUNDS, params)
        await conn.execute(bulk._APPLY_REFUNDS, params)
        refunded = (
            await conn.execute(text("SELECT count(*), sum(refunded_fen) FROM order_facts WHERE refunded_fen > 0"))
        ).one()
        recorded = await conn.scalar(text("SELECT count(*) FROM order_refunds WHERE refund_id LIKE 'x%'"))
    _reads_by_key(plan, "order_facts", "order_id")
    assert tuple(refunded) == (KEYS, KEYS * 2500)
    assert recorded == KEYS  # the unknown order's refund is not recorded


async def test_batch_reads_and_writes_probe_by_person_without_statistics(migrated: Stack) -> None:
    """The locked read of the profiles, the round's facts and tags, the tag writes and the profile writes: by person,
    never the tenant's rows whole."""
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
    async with unanalysed_copies(migrated, "segmentation", _FILL) as conn:
        lock = await explain(conn, bulk._LOCK_PROFILES, {"tenant": "acme", "persons": PERSONS})
        load = await explain(conn, bulk._load_round(True, True, True), {"tenant": "acme", "persons": PERSONS})
        write = await explain(conn, bulk._WRITE_CHANGES, changes)
        rows = {"tenant": "acme", "rows": bulk._json([{"person_id": p} for p in PERSONS]), "new": []}
        profiles = await explain(conn, bulk._WRITE_PROFILES, rows | {"existing": PERSONS})
    _reads_by_key(lock, "profiles", "person_id")
    for table in ("order_facts", "touch_facts", "person_tags"):
        assert f"Seq Scan on {table}" not in load, load
    _reads_by_key(load, "order_facts", "person_id")
    _reads_by_key(write, "person_tags", "person_id")
    _reads_by_key(profiles, "profiles", "person_id")
