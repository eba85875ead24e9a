"""COPY-based writes for bulk replays (asyncpg connection whose search_path is the service schema)."""

from __future__ import annotations

import asyncio
from typing import Any

from siyu_attribution.replay import ReplayRows

ORDER_COLUMNS = (
    "tenant",
    "order_id",
    "order_no",
    "person_id",
    "channel",
    "amount_fen",
    "refunded_fen",
    "lines",
    "paid_at",
    "completed_at",
    "plan_id",
    "plan_version",
    "attribution_id",
    "settle_due_at",
    "settled_at",
)
ATTRIBUTION_COLUMNS = (
    "tenant",
    "attribution_id",
    "order_id",
    "model",
    "plan_id",
    "plan_version",
    "cause",
    "decided_at",
)
SHARE_COLUMNS = (
    "tenant",
    "attribution_id",
    "position",
    "payee_id",
    "payee_role",
    "kind",
    "basis",
    "base_fen",
    "gross_fen",
)
ENTRY_COLUMNS = (
    "tenant",
    "entry_id",
    "txn_id",
    "kind",
    "account",
    "amount_fen",
    "order_id",
    "payee_id",
    "payee_role",
    "rule",
    "plan_id",
    "plan_version",
    "attribution_id",
    "posted_at",
    "period",
)


async def copy_replay(connections: list[Any], rows: ReplayRows) -> None:
    """Write one replayed chunk, each table over its own connection (in parallel, each in its own transaction).

    The chunk is all-or-nothing per table only: a rebuild that stops half-way is re-run into a fresh tenant.
    """
    work = [
        ("orders", ORDER_COLUMNS, rows.orders),
        ("attributions", ATTRIBUTION_COLUMNS, rows.attributions),
        ("attribution_shares", SHARE_COLUMNS, rows.shares),
        ("ledger_entries", ENTRY_COLUMNS, rows.entries),
    ]
    await asyncio.gather(
        *(
            conn.copy_records_to_table(table, records=records, columns=list(columns))
            for conn, (table, columns, records) in zip(connections, work, strict=True)
            if records
        )
    )
