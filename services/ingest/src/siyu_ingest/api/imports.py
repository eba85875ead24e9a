"""Bulk import of history: `POST /v1/tenants/{tenant}/imports?kind=orders|leads&format=csv|jsonl`.

The upload is read as a stream (constant memory), normalised row by row, and stored in chunks as ``import``
deliveries that the worker processes like webhooks (same identity and lifecycle path, same events). A bad row is
reported with its line number and reason; a re-upload of the same rows is counted as duplicates, not stored twice.
Progress is committed per chunk and readable at `GET /v1/tenants/{tenant}/imports/{import_id}`.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, ValidationError

from siyu_ingest.adapters import imports as import_store
from siyu_ingest.api.params import ImportIdPath, TenantPath
from siyu_ingest.domain import imports as rules
from siyu_ingest.domain.errors import Malformed
from siyu_shared.db.engine import SessionFactory, unit_of_work
from siyu_shared.http.deps import DbSession, Reader, Writer

CHUNK_ROWS = 5000
YIELD_EVERY = 250
"""Rows normalised between two turns of the event loop while a chunk is being written: the write is a handful of
round trips, each of which waited for a whole network chunk of normalisation (~650 rows) before."""
ERRORS_IN_REPLY = 100


class ImportOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "import_id": "0b9c0c0e-2f4e-4c1e-9a52-8d2d8f3f9a10",
                    "kind": "orders",
                    "status": "finished",
                    "rows_read": 3,
                    "accepted": 2,
                    "duplicates": 0,
                    "rejected": 1,
                    "errors": [{"line": 3, "error": "no order number (订单编号 / order_no)"}],
                    "started_at": "2026-11-22T08:00:00Z",
                    "finished_at": "2026-11-22T08:00:01Z",
                }
            ]
        }
    )

    import_id: str
    kind: str
    status: str
    rows_read: int
    accepted: int
    duplicates: int
    rejected: int
    errors: list[dict[str, Any]]
    started_at: datetime
    finished_at: datetime | None


async def _line_batches(request: Request, encoding: str) -> AsyncIterator[list[str]]:
    """The upload's complete lines, a network chunk at a time (constant memory whatever the file size)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    pending = ""
    async for chunk in request.stream():
        pending += decoder.decode(chunk).replace("\r\n", "\n")
        *complete, pending = pending.split("\n")
        if complete:
            yield complete
    pending += decoder.decode(b"", final=True)
    if pending:
        yield [pending]


async def _row_batches(
    request: Request, fmt: str, encoding: str, spec: dict[str, tuple[str, ...]]
) -> AsyncIterator[list[tuple[int, dict[str, Any] | str, bool]]]:
    """(line number, row, by_column) triples, a network chunk at a time: CSV rows come as fields by canonical name
    (``by_column``), JSONL rows as they are; a row that cannot even be read is given as its error text."""
    positions: dict[str, int | None] | None = None
    width = 0
    number = 0
    async for lines in _line_batches(request, encoding):
        out: list[tuple[int, dict[str, Any] | str, bool]] = []
        if fmt == "jsonl":
            for line in lines:
                number += 1
                if not line.strip():
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError:
                    value = None
                out.append((number, value if isinstance(value, dict) else "not a JSON object", False))
            yield out
            continue
        for fields in csv.reader(lines):
            number += 1
            if not fields or fields == [""]:
                continue
            if positions is None:
                header = [h.strip().lstrip("\ufeff") for h in fields]
                positions, width = rules.column_positions(header, spec), len(header)
                continue
            if len(fields) != width:
                out.append((number, f"expected {width} columns, got {len(fields)}", True))
                continue
            out.append((number, rules.from_fields(fields, positions), True))
        yield out


def imports_router() -> APIRouter:
    router = APIRouter(tags=["imports"])

    @router.post("/v1/tenants/{tenant}/imports", response_model=ImportOut, status_code=201)
    async def bulk_import(
        tenant: TenantPath,
        request: Request,
        principal: Writer,
        kind: Annotated[Literal["orders", "leads"], Query(description="orders (e.g. a Tmall export) or leads")],
        fmt: Annotated[Literal["csv", "jsonl"], Query(alias="format")] = "csv",
        encoding: Annotated[Literal["utf-8", "utf-8-sig", "gbk", "gb18030"], Query()] = "utf-8-sig",
    ) -> ImportOut:
        """Stream a CSV (header row; Tmall 订单导出 or English column names) or JSONL upload into history."""
        sessions: SessionFactory = request.app.state.runtime.sessions
        import_id = str(uuid.uuid4())
        record_of = rules.order_record if kind == "orders" else rules.lead_record
        from_columns = rules.order_from_columns if kind == "orders" else rules.lead_from_columns
        spec = rules.ORDER_COLUMNS if kind == "orders" else rules.LEAD_COLUMNS
        async with unit_of_work(sessions) as session:
            await import_store.start(session, tenant=principal.tenant, import_id=import_id, kind=kind)
        batch: list[tuple[str, bytes]] = []
        errors: list[dict[str, Any]] = []
        read = 0
        in_flight: asyncio.Task[None] | None = None

        async def flush(rows: list[tuple[str, bytes]], bad: list[dict[str, Any]], count: int, finished: bool) -> None:
            async with unit_of_work(sessions) as session:
                accepted = await import_store.store_records(session, tenant=principal.tenant, records=rows)
                await import_store.progress(
                    session,
                    tenant=principal.tenant,
                    import_id=import_id,
                    rows=count,
                    accepted=accepted,
                    duplicates=len(rows) - accepted,
                    errors=bad,
                    finished=finished,
                )

        async def hand_over(finished: bool = False) -> None:
            # One chunk is written while the next is parsed; chunks still commit one after the other.
            nonlocal in_flight, batch, errors, read
            if in_flight is not None:
                await in_flight
            in_flight = asyncio.create_task(flush(batch, errors, read, finished))
            batch, errors, read = [], [], 0

        try:
            async for rows in _row_batches(request, fmt, encoding, spec):
                for line, row, by_column in rows:
                    read += 1
                    if isinstance(row, str):
                        errors.append({"line": line, "error": row})
                        continue
                    try:
                        stored = rules.encoded(from_columns(row) if by_column else record_of(row))
                    except (Malformed, ValidationError, ValueError) as exc:
                        errors.append({"line": line, "error": str(exc).splitlines()[0][:300]})
                        continue
                    batch.append(stored)
                    if read >= CHUNK_ROWS:
                        await hand_over()
                    elif read % YIELD_EVERY == 0 and in_flight is not None:
                        await asyncio.sleep(0)  # let the chunk being written take its next step
            await hand_over(finished=True)
        finally:
            if in_flight is not None:
                await in_flight
        async with unit_of_work(sessions) as session:
            job = await import_store.get(session, tenant=principal.tenant, import_id=import_id)
        assert job is not None
        job["errors"] = job["errors"][:ERRORS_IN_REPLY]
        return ImportOut.model_validate(job)

    @router.get("/v1/tenants/{tenant}/imports/{import_id}", response_model=ImportOut)
    async def get_import(
        tenant: TenantPath, import_id: ImportIdPath, principal: Reader, session: DbSession
    ) -> ImportOut:
        """Progress of an import (committed per chunk) with its per-row errors (the first 1,000)."""
        job = await import_store.get(session, tenant=principal.tenant, import_id=import_id)
        if job is None:
            raise HTTPException(404, detail="no such import")
        return ImportOut.model_validate(job)

    return router
