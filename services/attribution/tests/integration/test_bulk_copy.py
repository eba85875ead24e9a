"""The replay's COPY writes what the replay decided: every row read back as it was built, timestamps included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import asyncpg
import pytest

from siyu_attribution.adapters.bulk import (
    ATTRIBUTION_COLUMNS,
    ENTRY_COLUMNS,
    ORDER_COLUMNS,
    SHARE_COLUMNS,
    copy_replay,
)
from siyu_attribution.domain.facts import ClaimFact, Evidence, Line, OrderFacts, TouchFact
from siyu_attribution.domain.plans import DEFAULT_PLAN
from siyu_attribution.replay import OrderHistory, replay
from siyu_devstack.stack import Stack
from siyu_shared.settings import to_libpq_url

pytestmark = pytest.mark.integration
PAID = datetime(2026, 10, 3, 4, 5, 6, 789_012, tzinfo=UTC)
SHANGHAI = timezone(timedelta(hours=8))


def histories() -> list[OrderHistory]:
    out = []
    for i in range(40):
        paid = (PAID + timedelta(hours=7 * i, microseconds=i)).astimezone(SHANGHAI if i % 2 else UTC)
        lines = (Line(f"{i}-1", 3_000, "skincare"), Line(f"{i}-2", 7_000 + i, "makeup"))
        order = OrderFacts(f"o{i}", f"T{i}", f"p{i}", 10_000 + i, paid, lines, "tmall")
        evidence = Evidence(
            touches=(TouchFact(f"t{i}", "staff", "wecom_1v1", paid - timedelta(days=1), f"s{i % 3}"),),
            claims=(ClaimFact(f"c{i}", f"T{i}", "s9", "staff_1v1", paid),) if i % 3 == 0 else (),
        )
        out.append(OrderHistory(order, evidence, paid + timedelta(days=1) if i % 4 else None))
    return out


async def test_copied_rows_read_back_as_replayed(migrated: Stack) -> None:
    tenant = f"t{uuid4().hex[:8]}"
    rows = replay(
        tenant=tenant, histories=histories(), plan=DEFAULT_PLAN, now=PAID + timedelta(days=40), last_closed=None
    )
    assert rows.entries and any(row[14] is not None for row in rows.orders)
    dsn = to_libpq_url(migrated.service_dsn("attribution"))
    writers = [await asyncpg.connect(dsn, server_settings={"search_path": "attribution"}) for _ in range(4)]
    reader = await asyncpg.connect(dsn, server_settings={"search_path": "attribution"})
    try:
        await copy_replay(writers, rows)
        await copy_replay(writers, type(rows)())  # an empty chunk writes nothing
        for table, columns, built, key in (
            ("orders", ORDER_COLUMNS, rows.orders, "order_id"),
            ("attributions", ATTRIBUTION_COLUMNS, rows.attributions, "attribution_id"),
            ("attribution_shares", SHARE_COLUMNS, rows.shares, "attribution_id, position"),
            ("ledger_entries", ENTRY_COLUMNS, rows.entries, "entry_id"),
        ):
            stored = await reader.fetch(
                f"SELECT {', '.join(columns)} FROM {table} WHERE tenant = $1 ORDER BY {key}", tenant
            )
            order = [columns.index(k.strip()) for k in key.split(",")]
            expected = sorted(built, key=lambda row: tuple(row[i] for i in order))
            assert [tuple(r) for r in stored] == expected, table
    finally:
        for conn in (*writers, reader):
            await conn.close()


async def test_infinities_are_copied_as_postgres_infinities(migrated: Stack) -> None:
    """``datetime.max`` / ``datetime.min`` (and the same instants in UTC) land as ``infinity`` / ``-infinity``."""
    tenant = f"t{uuid4().hex[:8]}"
    row = dict.fromkeys(ORDER_COLUMNS)
    row.update(
        tenant=tenant,
        order_id="o1",
        order_no="T1",
        person_id="p1",
        channel="tmall",
        amount_fen=1,
        refunded_fen=0,
        lines="[]",
        paid_at=datetime.min,
        completed_at=datetime.max.replace(tzinfo=UTC),
        plan_id="default",
        plan_version=1,
        settle_due_at=datetime.max,
    )
    dsn = to_libpq_url(migrated.service_dsn("attribution"))
    conns = [await asyncpg.connect(dsn, server_settings={"search_path": "attribution"}) for _ in range(4)]
    try:
        rows = replay(tenant=tenant, histories=[], plan=DEFAULT_PLAN, now=PAID, last_closed=None)
        rows.orders.append(tuple(row.values()))
        await copy_replay(conns, rows)
        stored = await conns[0].fetchrow(
            "SELECT paid_at = '-infinity' AS paid, completed_at = 'infinity' AS completed,"
            " settle_due_at = 'infinity' AS due FROM orders WHERE tenant = $1",
            tenant,
        )
        assert stored is not None and all(stored.values())
    finally:
        for conn in conns:
            await conn.close()
