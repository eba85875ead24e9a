"""SQL for decisions and money: attributions with their shares, ledger entries, statements, period closes.

Every statement here is an INSERT or a SELECT: these tables are append-only (enforced by a trigger).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_attribution.adapters.tables import (
    attribution_shares,
    attributions,
    ledger_entries,
    orders,
    period_closes,
    statements,
)
from siyu_attribution.domain.book import AttributionRecord
from siyu_attribution.domain.commission import Share
from siyu_attribution.domain.ledger import Entry, StatementLine


async def lock_books(session: AsyncSession, *, tenant: str, exclusive: bool) -> None:
    """Postings share the tenant's books; closing a period takes them exclusively, so no entry lands mid-close."""
    key = func.hashtext(f"attribution-books:{tenant}")
    lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
    await session.execute(select(lock(key)))


async def last_closed(session: AsyncSession, *, tenant: str) -> str | None:
    value: str | None = await session.scalar(
        select(func.max(period_closes.c.period)).where(period_closes.c.tenant == tenant)
    )
    return value


async def attribution(
    session: AsyncSession, *, tenant: str, order_id: str, attribution_id: str
) -> AttributionRecord | None:
    head = (
        await session.execute(
            select(attributions).where(
                attributions.c.tenant == tenant,
                attributions.c.order_id == order_id,
                attributions.c.attribution_id == attribution_id,
            )
        )
    ).first()
    if head is None:
        return None
    rows = await session.execute(
        select(attribution_shares)
        .where(
            attribution_shares.c.tenant == tenant,
            attribution_shares.c.order_id == order_id,
            attribution_shares.c.attribution_id == attribution_id,
        )
        .order_by(attribution_shares.c.position)
    )
    return AttributionRecord(
        attribution_id=head.attribution_id,
        order_id=head.order_id,
        model=head.model,
        plan_id=head.plan_id,
        plan_version=head.plan_version,
        shares=tuple(Share(r.payee_id, r.payee_role, r.kind, r.basis, r.base_fen, r.gross_fen) for r in rows),
        cause=head.cause,
        decided_at=head.decided_at,
    )


async def attribution_history(session: AsyncSession, *, tenant: str, order_id: str) -> list[AttributionRecord]:
    ids = await session.execute(
        select(attributions.c.attribution_id)
        .where(attributions.c.tenant == tenant, attributions.c.order_id == order_id)
        .order_by(attributions.c.seq)
    )
    out = []
    for attribution_id in ids.scalars():
        record = await attribution(session, tenant=tenant, order_id=order_id, attribution_id=attribution_id)
        if record is not None:
            out.append(record)
    return out


async def add_attribution(session: AsyncSession, *, tenant: str, record: AttributionRecord) -> None:
    await session.execute(
        insert(attributions).values(
            tenant=tenant,
            attribution_id=record.attribution_id,
            order_id=record.order_id,
            model=record.model,
            plan_id=record.plan_id,
            plan_version=record.plan_version,
            cause=record.cause[:200],
            decided_at=record.decided_at,
        )
    )
    if record.shares:
        await session.execute(
            insert(attribution_shares),
            [
                {
                    "tenant": tenant,
                    "order_id": record.order_id,
                    "attribution_id": record.attribution_id,
                    "position": i,
                    "payee_id": s.payee_id,
                    "payee_role": s.role,
                    "kind": s.kind,
                    "basis": s.basis,
                    "base_fen": s.base_fen,
                    "gross_fen": s.gross_fen,
                }
                for i, s in enumerate(record.shares)
            ],
        )


def _entry(row: Any) -> Entry:
    return Entry(
        tenant=row.tenant,
        entry_id=row.entry_id,
        txn_id=row.txn_id,
        kind=row.kind,
        account=row.account,
        amount_fen=row.amount_fen,
        order_id=row.order_id,
        payee_id=row.payee_id,
        payee_role=row.payee_role,
        rule=row.rule,
        plan_id=row.plan_id,
        plan_version=row.plan_version,
        attribution_id=row.attribution_id,
        posted_at=row.posted_at,
        period=row.period,
    )


async def entries_of_order(session: AsyncSession, *, tenant: str, order_id: str) -> list[Entry]:
    rows = await session.execute(
        select(ledger_entries)
        .where(ledger_entries.c.tenant == tenant, ledger_entries.c.order_id == order_id)
        .order_by(ledger_entries.c.seq)
    )
    return [_entry(r) for r in rows]


async def entries(
    session: AsyncSession,
    *,
    tenant: str,
    payee_id: str | None = None,
    period: str | None = None,
    order_id: str | None = None,
    limit: int = 1000,
) -> list[Entry]:
    stmt = select(ledger_entries).where(ledger_entries.c.tenant == tenant)
    if payee_id is not None:
        stmt = stmt.where(ledger_entries.c.payee_id == payee_id)
    if period is not None:
        stmt = stmt.where(ledger_entries.c.period == period)
    if order_id is not None:
        stmt = stmt.where(ledger_entries.c.order_id == order_id)
    rows = await session.execute(stmt.order_by(ledger_entries.c.seq).limit(limit))
    return [_entry(r) for r in rows]


async def append_entries(session: AsyncSession, *, tenant: str, new: Sequence[Entry]) -> None:
    """Append ``tenant``'s entries (an entry id already there is ignored) with one cached statement executed over
    the rows."""
    if not new:
        return
    if any(e.tenant != tenant for e in new):
        raise ValueError(f"entries of another tenant than {tenant} in its books")
    rows = [
        {
            "tenant": e.tenant,
            "entry_id": e.entry_id,
            "txn_id": e.txn_id,
            "kind": e.kind,
            "account": e.account,
            "amount_fen": e.amount_fen,
            "order_id": e.order_id,
            "payee_id": e.payee_id,
            "payee_role": e.payee_role,
            "rule": e.rule[:300],
            "plan_id": e.plan_id,
            "plan_version": e.plan_version,
            "attribution_id": e.attribution_id,
            "posted_at": e.posted_at,
            "period": e.period,
        }
        for e in new
    ]
    await session.execute(pg_insert(ledger_entries).on_conflict_do_nothing(), rows)


async def month_figures(
    session: AsyncSession,
    *,
    tenant: str,
    payees: Sequence[str],
    period_start: datetime,
    period_end: datetime,
    exclude_order: str,
) -> tuple[dict[str, int], dict[str, int]]:
    """Each payee's attributed GMV and commission so far in the month (for tiers and monthly caps)."""
    if not payees:
        return {}, {}
    stmt = (
        select(
            attribution_shares.c.payee_id,
            func.coalesce(func.sum(attribution_shares.c.base_fen), 0),
            func.coalesce(func.sum(attribution_shares.c.gross_fen), 0),
        )
        .join(
            orders,
            (orders.c.tenant == attribution_shares.c.tenant)
            & (orders.c.order_id == attribution_shares.c.order_id)
            & (orders.c.attribution_id == attribution_shares.c.attribution_id),
        )
        .where(
            attribution_shares.c.tenant == tenant,
            attribution_shares.c.payee_id.in_(payees),
            # A literal, not a parameter: even a generic plan can then use the partial index of commission shares.
            attribution_shares.c.kind == literal_column("'commission'"),
            orders.c.paid_at >= period_start,
            orders.c.paid_at < period_end,
            orders.c.order_id != exclude_order,
        )
        .group_by(attribution_shares.c.payee_id)
    )
    gmv: dict[str, int] = {}
    commission: dict[str, int] = {}
    for payee, base, gross in await session.execute(stmt):
        gmv[payee] = int(base)
        commission[payee] = int(gross)
    return gmv, commission


async def statement_lines(
    session: AsyncSession, *, tenant: str, after: str | None, through: str
) -> list[tuple[str, str, int, int]]:
    """(period, payee, total, count) of payable entries in the periods being closed."""
    stmt = (
        select(
            ledger_entries.c.period,
            ledger_entries.c.payee_id,
            func.sum(ledger_entries.c.amount_fen),
            func.count(),
        )
        .where(
            ledger_entries.c.tenant == tenant,
            ledger_entries.c.account.startswith("payable:"),
            ledger_entries.c.period <= through,
        )
        .group_by(ledger_entries.c.period, ledger_entries.c.payee_id)
        .order_by(ledger_entries.c.period, ledger_entries.c.payee_id)
    )
    if after is not None:
        stmt = stmt.where(ledger_entries.c.period > after)
    return [(p, payee, -int(total), int(count)) for p, payee, total, count in await session.execute(stmt)]


async def add_statements(
    session: AsyncSession, *, tenant: str, lines: Sequence[StatementLine], closed_at: datetime
) -> None:
    if lines:
        await session.execute(
            insert(statements),
            [
                {
                    "tenant": tenant,
                    "statement_id": s.statement_id,
                    "payee_id": s.payee_id,
                    "period": s.period,
                    "total_fen": s.total_fen,
                    "entry_count": s.entry_count,
                    "closed_at": closed_at,
                }
                for s in lines
            ],
        )


async def add_period_close(session: AsyncSession, *, tenant: str, period: str, closed_at: datetime, count: int) -> None:
    await session.execute(
        insert(period_closes).values(tenant=tenant, period=period, closed_at=closed_at, statement_count=count)
    )


async def list_statements(
    session: AsyncSession, *, tenant: str, period: str | None = None, payee_id: str | None = None
) -> list[dict[str, Any]]:
    stmt = select(statements).where(statements.c.tenant == tenant)
    if period is not None:
        stmt = stmt.where(statements.c.period == period)
    if payee_id is not None:
        stmt = stmt.where(statements.c.payee_id == payee_id)
    rows = await session.execute(stmt.order_by(statements.c.period, statements.c.payee_id))
    return [dict(r._mapping) for r in rows]
