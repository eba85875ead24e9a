"""Set-based SQL for the live consumer's batches: a few statements per partition batch instead of ~20 per event."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_attribution.adapters.books import _entry
from siyu_attribution.adapters.projections import OrderRow, _order_row
from siyu_attribution.adapters.tables import (
    attribution_shares,
    attributions,
    claims,
    leads,
    ledger_entries,
    orders,
    overrides,
    touches,
)
from siyu_attribution.domain.book import AttributionRecord
from siyu_attribution.domain.commission import Share
from siyu_attribution.domain.facts import ClaimFact, OverrideFact, SourceFact, TouchFact
from siyu_attribution.domain.ledger import Entry


async def serialize_on_all(session: AsyncSession, *, keys: Iterable[str]) -> None:
    """``projections.serialize_on`` for many subjects in one statement, in a fixed (sorted) order."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS u(k, i)"),
        {"keys": ordered},
    )


async def insert_new(session: AsyncSession, table: Any, key: str, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert rows (unique on ``key`` within the batch), skipping known ones; the keys actually inserted."""
    if not rows:
        return set()
    stmt = pg_insert(table).values(list(rows)).on_conflict_do_nothing().returning(table.c[key])
    return set((await session.execute(stmt)).scalars())


async def orders_of_persons(session: AsyncSession, *, tenant: str, persons: Sequence[str]) -> list[OrderRow]:
    """Every order of these persons, locked for this transaction (like ``projections.lock_order``)."""
    stmt = (
        select(orders)
        .where(orders.c.tenant == tenant, orders.c.person_id.in_(persons))
        .order_by(orders.c.order_id)
        .with_for_update()
    )
    return [_order_row(r) for r in await session.execute(stmt)]


async def touches_of_persons(
    session: AsyncSession, *, tenant: str, persons: Sequence[str]
) -> list[tuple[str, TouchFact]]:
    stmt = select(touches).where(touches.c.tenant == tenant, touches.c.person_id.in_(persons))
    return [
        (r.person_id, TouchFact(r.touch_id, r.kind, r.channel, r.occurred_at, r.staff_id, r.persona))
        for r in await session.execute(stmt)
    ]


async def sources_of_persons(
    session: AsyncSession, *, tenant: str, persons: Sequence[str]
) -> list[tuple[str, SourceFact]]:
    stmt = select(leads).where(
        leads.c.tenant == tenant,
        leads.c.person_id.in_(persons),
        leads.c.partner_id.is_not(None),
        leads.c.account_kind.in_(("kol", "koc")),
    )
    return [
        (r.person_id, SourceFact(r.lead_id, r.partner_id, r.account_kind, r.occurred_at))
        for r in await session.execute(stmt)
    ]


async def claims_and_overrides(
    session: AsyncSession, *, tenant: str, order_nos: Sequence[str]
) -> tuple[dict[str, list[ClaimFact]], dict[str, list[OverrideFact]]]:
    by_claim: dict[str, list[ClaimFact]] = defaultdict(list)
    by_override: dict[str, list[OverrideFact]] = defaultdict(list)
    if not order_nos:
        return by_claim, by_override
    for r in await session.execute(select(claims).where(claims.c.tenant == tenant, claims.c.order_no.in_(order_nos))):
        by_claim[r.order_no].append(ClaimFact(r.claim_id, r.order_no, r.staff_id, r.role, r.claimed_at, r.seq))
    rows = await session.execute(
        select(overrides).where(overrides.c.tenant == tenant, overrides.c.order_no.in_(order_nos))
    )
    for r in rows:
        by_override[r.order_no].append(
            OverrideFact(r.override_id, r.order_no, r.payee_id, r.payee_role, r.reason, r.decided_at, r.seq)
        )
    return by_claim, by_override


async def current_attributions(
    session: AsyncSession, *, tenant: str, pairs: Sequence[tuple[str, str]]
) -> dict[str, AttributionRecord]:
    """The records (with shares) of these (order_id, attribution_id) pairs, by order id."""
    if not pairs:
        return {}
    wanted = set(pairs)
    ids = sorted({a for _, a in pairs})
    heads = await session.execute(
        select(attributions).where(
            attributions.c.tenant == tenant,
            attributions.c.order_id.in_(sorted({o for o, _ in pairs})),
            attributions.c.attribution_id.in_(ids),
        )
    )
    found = {(h.order_id, h.attribution_id): h for h in heads if (h.order_id, h.attribution_id) in wanted}
    shares_of: dict[str, list[Share]] = defaultdict(list)
    rows = await session.execute(
        select(attribution_shares)
        .where(
            attribution_shares.c.tenant == tenant,
            attribution_shares.c.order_id.in_(sorted({o for o, _ in pairs})),
            attribution_shares.c.attribution_id.in_(ids),
        )
        .order_by(attribution_shares.c.attribution_id, attribution_shares.c.position)
    )
    for r in rows:
        shares_of[r.attribution_id].append(Share(r.payee_id, r.payee_role, r.kind, r.basis, r.base_fen, r.gross_fen))
    return {
        order_id: AttributionRecord(
            attribution_id=h.attribution_id,
            order_id=h.order_id,
            model=h.model,
            plan_id=h.plan_id,
            plan_version=h.plan_version,
            shares=tuple(shares_of.get(h.attribution_id, ())),
            cause=h.cause,
            decided_at=h.decided_at,
        )
        for (order_id, _), h in found.items()
    }


async def entries_of_orders(session: AsyncSession, *, tenant: str, order_ids: Sequence[str]) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = defaultdict(list)
    if not order_ids:
        return out
    rows = await session.execute(
        select(ledger_entries)
        .where(ledger_entries.c.tenant == tenant, ledger_entries.c.order_id.in_(order_ids))
        .order_by(ledger_entries.c.seq)
    )
    for r in rows:
        out[r.order_id].append(_entry(r))
    return out


async def add_attributions(session: AsyncSession, *, tenant: str, records: Sequence[AttributionRecord]) -> None:
    if not records:
        return
    await session.execute(
        attributions.insert(),
        [
            {
                "tenant": tenant,
                "attribution_id": r.attribution_id,
                "order_id": r.order_id,
                "model": r.model,
                "plan_id": r.plan_id,
                "plan_version": r.plan_version,
                "cause": r.cause[:200],
                "decided_at": r.decided_at,
            }
            for r in records
        ],
    )
    shares = [
        {
            "tenant": tenant,
            "order_id": r.order_id,
            "attribution_id": r.attribution_id,
            "position": i,
            "payee_id": s.payee_id,
            "payee_role": s.role,
            "kind": s.kind,
            "basis": s.basis,
            "base_fen": s.base_fen,
            "gross_fen": s.gross_fen,
        }
        for r in records
        for i, s in enumerate(r.shares)
    ]
    if shares:
        await session.execute(attribution_shares.insert(), shares)


async def set_attribution_ids(session: AsyncSession, *, tenant: str, current: dict[str, str]) -> None:
    """Point each order at its latest attribution (one executemany)."""
    if not current:
        return
    ordered = sorted(current.items())
    await session.execute(
        text(
            "UPDATE orders SET attribution_id = v.a"
            " FROM unnest(CAST(:order_ids AS text[]), CAST(:attribution_ids AS text[])) AS v(o, a)"
            " WHERE orders.tenant = :tenant AND orders.order_id = v.o"
        ),
        {"tenant": tenant, "order_ids": [o for o, _ in ordered], "attribution_ids": [a for _, a in ordered]},
    )


async def set_settled(session: AsyncSession, *, tenant: str, settled: dict[str, datetime]) -> None:
    """Mark orders settled, each at its own time (one statement)."""
    if not settled:
        return
    ordered = sorted(settled.items())
    await session.execute(
        text(
            "UPDATE orders SET settled_at = v.s"
            " FROM unnest(CAST(:order_ids AS text[]), CAST(:settled_at AS timestamptz[])) AS v(o, s)"
            " WHERE orders.tenant = :tenant AND orders.order_id = v.o"
        ),
        {"tenant": tenant, "order_ids": [o for o, _ in ordered], "settled_at": [s for _, s in ordered]},
    )
