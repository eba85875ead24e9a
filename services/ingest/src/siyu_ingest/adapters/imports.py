"""Bulk import storage: records become ``import`` deliveries in multi-row inserts; jobs keep their progress."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, literal, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_ingest.adapters.tables import imports

MAX_ERRORS_KEPT = 1000
_FIRST_ERRORS: ColumnElement[Any] = literal_column(f"'$[0 to {MAX_ERRORS_KEPT - 1}]'::jsonpath")
_INSERT = text(
    """
    INSERT INTO deliveries (tenant, channel, dedupe_key, body)
    SELECT :tenant, 'import', k, b FROM unnest(CAST(:keys AS text[]), CAST(:bodies AS bytea[])) AS r(k, b)
    ON CONFLICT ON CONSTRAINT deliveries_dedupe DO NOTHING
    """
)


async def start(session: AsyncSession, *, tenant: str, import_id: str, kind: str) -> None:
    await session.execute(pg_insert(imports).values(tenant=tenant, import_id=import_id, kind=kind))


async def store_records(session: AsyncSession, *, tenant: str, records: Sequence[tuple[str, bytes]]) -> int:
    """Insert (dedupe_key, encoded record) pairs as pending deliveries; returns how many were new."""
    if not records:
        return 0
    # One statement over arrays: far cheaper than a multi-row VALUES with thousands of bound parameters.
    result = await session.execute(
        _INSERT,
        {"tenant": tenant, "keys": [k for k, _ in records], "bodies": [b for _, b in records]},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def progress(
    session: AsyncSession,
    *,
    tenant: str,
    import_id: str,
    rows: int,
    accepted: int,
    duplicates: int,
    errors: Sequence[dict[str, Any]],
    finished: bool = False,
) -> None:
    values: dict[str, Any] = {
        "rows_read": imports.c.rows_read + rows,
        "accepted": imports.c.accepted + accepted,
        "duplicates": imports.c.duplicates + duplicates,
        "rejected": imports.c.rejected + len(errors),
    }
    if errors:
        values["errors"] = func.jsonb_path_query_array(
            imports.c.errors.op("||")(literal(list(errors), type_=JSONB)),
            literal_column(f"'$[0 to {MAX_ERRORS_KEPT - 1}]'::jsonpath"),
        )
    if finished:
        values["status"] = "finished"
        values["finished_at"] = func.now()
    await session.execute(
        update(imports).where(imports.c.tenant == tenant, imports.c.import_id == import_id).values(**values)
    )


async def get(session: AsyncSession, *, tenant: str, import_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(select(imports).where(imports.c.tenant == tenant, imports.c.import_id == import_id))
    ).first()
    return dict(row._mapping) if row is not None else None
