"""SQL for what attribution knows: orders, refunds, touches, lead sources, claims, overrides, plans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_attribution.adapters.tables import claims, leads, orders, overrides, plans, refunds, touches
from siyu_attribution.domain.facts import ClaimFact, Evidence, Line, OrderFacts, OverrideFact, SourceFact, TouchFact
from siyu_attribution.domain.plans import PlanBody, PlanVersion


@dataclass(frozen=True, slots=True)
class OrderRow:
    tenant: str
    facts: OrderFacts
    plan_id: str
    plan_version: int
    attribution_id: str | None
    settle_due_at: datetime | None
    settled_at: datetime | None

    @property
    def settled(self) -> bool:
        return self.settled_at is not None


def _order_row(row: Row[Any]) -> OrderRow:
    facts = OrderFacts(
        order_id=row.order_id,
        order_no=row.order_no,
        person_id=row.person_id,
        amount_fen=row.amount_fen,
        paid_at=row.paid_at,
        lines=tuple(Line(li["line_id"], li["amount_fen"], li.get("category")) for li in row.lines),
        channel=row.channel,
        refunded_fen=row.refunded_fen,
        completed_at=row.completed_at,
        closed_at=row.closed_at,
    )
    return OrderRow(
        row.tenant, facts, row.plan_id, row.plan_version, row.attribution_id, row.settle_due_at, row.settled_at
    )


def order_rows(rows: Sequence[Row[Any]]) -> list[OrderRow]:
    return [_order_row(r) for r in rows]


async def insert_order(
    session: AsyncSession, *, tenant: str, order: OrderFacts, plan: PlanVersion, source: dict[str, Any] | None
) -> bool:
    """Record a paid order once; False when it was already known."""
    stmt = (
        pg_insert(orders)
        .values(
            tenant=tenant,
            order_id=order.order_id,
            order_no=order.order_no,
            person_id=order.person_id,
            channel=order.channel,
            amount_fen=order.amount_fen,
            lines=[{"line_id": li.line_id, "amount_fen": li.amount_fen, "category": li.category} for li in order.lines],
            source=source,
            paid_at=order.paid_at,
            plan_id=plan.plan_id,
            plan_version=plan.version,
        )
        .on_conflict_do_nothing()
        .returning(orders.c.order_id)
    )
    return (await session.execute(stmt)).first() is not None


async def lock_order(session: AsyncSession, *, tenant: str, order_id: str) -> OrderRow | None:
    """The order, locked for this transaction (its ledger changes one unit of work at a time)."""
    stmt = select(orders).where(orders.c.tenant == tenant, orders.c.order_id == order_id).with_for_update()
    row = (await session.execute(stmt)).first()
    return _order_row(row) if row else None


async def get_order(session: AsyncSession, *, tenant: str, order_id: str) -> OrderRow | None:
    row = (
        await session.execute(select(orders).where(orders.c.tenant == tenant, orders.c.order_id == order_id))
    ).first()
    return _order_row(row) if row else None


async def order_ids_by_order_no(session: AsyncSession, *, tenant: str, order_no: str) -> list[str]:
    stmt = select(orders.c.order_id).where(orders.c.tenant == tenant, orders.c.order_no == order_no)
    return list((await session.execute(stmt)).scalars())


async def order_ids_of_person(
    session: AsyncSession, *, tenant: str, person_id: str, paid_from: datetime, unsettled_only: bool = False
) -> list[str]:
    stmt = select(orders.c.order_id).where(
        orders.c.tenant == tenant, orders.c.person_id == person_id, orders.c.paid_at >= paid_from
    )
    if unsettled_only:
        stmt = stmt.where(orders.c.settled_at.is_(None))
    return list((await session.execute(stmt.order_by(orders.c.paid_at, orders.c.order_id))).scalars())


async def update_order(session: AsyncSession, *, tenant: str, order_id: str, **values: Any) -> None:
    await session.execute(
        update(orders).where(orders.c.tenant == tenant, orders.c.order_id == order_id).values(**values)
    )


async def add_refund(
    session: AsyncSession, *, tenant: str, refund_id: str, order_id: str, amount_fen: int, refunded_at: datetime
) -> bool:
    stmt = (
        pg_insert(refunds)
        .values(tenant=tenant, refund_id=refund_id, order_id=order_id, amount_fen=amount_fen, refunded_at=refunded_at)
        .on_conflict_do_nothing()
        .returning(refunds.c.refund_id)
    )
    return (await session.execute(stmt)).first() is not None


async def add_touch(
    session: AsyncSession, *, tenant: str, person_id: str, touch: TouchFact, campaign_id: str | None
) -> bool:
    stmt = (
        pg_insert(touches)
        .values(
            tenant=tenant,
            touch_id=touch.touch_id,
            person_id=person_id,
            kind=touch.kind,
            channel=touch.channel,
            staff_id=touch.staff_id,
            persona=touch.persona,
            campaign_id=campaign_id,
            occurred_at=touch.occurred_at,
        )
        .on_conflict_do_nothing()
        .returning(touches.c.touch_id)
    )
    return (await session.execute(stmt)).first() is not None


async def add_lead(session: AsyncSession, *, tenant: str, values: dict[str, Any]) -> bool:
    stmt = pg_insert(leads).values(tenant=tenant, **values).on_conflict_do_nothing().returning(leads.c.lead_id)
    return (await session.execute(stmt)).first() is not None


async def add_claim(session: AsyncSession, *, tenant: str, claim: ClaimFact, via: str, note: str | None) -> ClaimFact:
    stmt = (
        insert(claims)
        .values(
            tenant=tenant,
            claim_id=claim.claim_id,
            order_no=claim.order_no,
            staff_id=claim.staff_id,
            role=claim.role,
            via=via,
            note=note,
            claimed_at=claim.claimed_at,
        )
        .returning(claims.c.seq)
    )
    seq = (await session.execute(stmt)).scalar_one()
    return ClaimFact(claim.claim_id, claim.order_no, claim.staff_id, claim.role, claim.claimed_at, seq)


async def add_override(session: AsyncSession, *, tenant: str, decided: OverrideFact, auditor_key_id: str) -> None:
    await session.execute(
        insert(overrides).values(
            tenant=tenant,
            override_id=decided.override_id,
            order_no=decided.order_no,
            payee_id=decided.payee_id,
            payee_role=decided.payee_role,
            reason=decided.reason,
            auditor_key_id=auditor_key_id,
            decided_at=decided.decided_at,
        )
    )


async def list_overrides(session: AsyncSession, *, tenant: str, order_no: str) -> list[dict[str, Any]]:
    stmt = (
        select(overrides)
        .where(overrides.c.tenant == tenant, overrides.c.order_no == order_no)
        .order_by(overrides.c.seq)
    )
    return [dict(row._mapping) for row in await session.execute(stmt)]


async def list_claims(session: AsyncSession, *, tenant: str, order_no: str) -> list[dict[str, Any]]:
    stmt = select(claims).where(claims.c.tenant == tenant, claims.c.order_no == order_no).order_by(claims.c.seq)
    return [dict(row._mapping) for row in await session.execute(stmt)]


async def evidence(session: AsyncSession, *, tenant: str, order: OrderFacts, since: datetime) -> Evidence:
    """Everything that can decide who earns ``order``: touches since ``since``, partner sources, claims, overrides."""
    touch_rows = await session.execute(
        select(touches).where(
            touches.c.tenant == tenant,
            touches.c.person_id == order.person_id,
            touches.c.occurred_at >= since,
            touches.c.occurred_at <= order.paid_at,
        )
    )
    source_rows = await session.execute(
        select(leads).where(
            leads.c.tenant == tenant,
            leads.c.person_id == order.person_id,
            leads.c.partner_id.is_not(None),
            leads.c.account_kind.in_(("kol", "koc")),
            leads.c.occurred_at <= order.paid_at,
        )
    )
    claim_rows = await session.execute(
        select(claims).where(claims.c.tenant == tenant, claims.c.order_no == order.order_no)
    )
    override_rows = await session.execute(
        select(overrides).where(overrides.c.tenant == tenant, overrides.c.order_no == order.order_no)
    )
    return Evidence(
        touches=tuple(
            TouchFact(r.touch_id, r.kind, r.channel, r.occurred_at, r.staff_id, r.persona) for r in touch_rows
        ),
        sources=tuple(SourceFact(r.lead_id, r.partner_id, r.account_kind, r.occurred_at) for r in source_rows),
        claims=tuple(ClaimFact(r.claim_id, r.order_no, r.staff_id, r.role, r.claimed_at, r.seq) for r in claim_rows),
        overrides=tuple(
            OverrideFact(r.override_id, r.order_no, r.payee_id, r.payee_role, r.reason, r.decided_at, r.seq)
            for r in override_rows
        ),
    )


async def plan_versions(session: AsyncSession, *, tenant: str, plan_id: str | None = None) -> list[PlanVersion]:
    stmt = select(plans).where(plans.c.tenant == tenant)
    if plan_id is not None:
        stmt = stmt.where(plans.c.plan_id == plan_id)
    rows = await session.execute(stmt.order_by(plans.c.plan_id, plans.c.version))
    return [
        PlanVersion(
            plan_id=r.plan_id, version=r.version, effective_from=r.effective_from, body=PlanBody.model_validate(r.body)
        )
        for r in rows
    ]


async def add_plan_version(
    session: AsyncSession, *, tenant: str, plan_id: str, effective_from: datetime, body: PlanBody
) -> PlanVersion:
    """A new version of the plan (versions are never edited); concurrent writers serialise on the plan id."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"plan:{tenant}:{plan_id}"))))
    latest = await session.scalar(
        select(func.max(plans.c.version)).where(and_(plans.c.tenant == tenant, plans.c.plan_id == plan_id))
    )
    version = (latest or 0) + 1
    await session.execute(
        insert(plans).values(
            tenant=tenant,
            plan_id=plan_id,
            version=version,
            effective_from=effective_from,
            body=body.model_dump(mode="json"),
        )
    )
    return PlanVersion(plan_id=plan_id, version=version, effective_from=effective_from, body=body)


async def merge_persons(session: AsyncSession, *, tenant: str, survivor: str, merged: Sequence[str]) -> None:
    for table in (orders, touches, leads):
        await session.execute(
            update(table).where(table.c.tenant == tenant, table.c.person_id.in_(merged)).values(person_id=survivor)
        )


async def serialize_on(session: AsyncSession, *, tenant: str, subject: str) -> None:
    """Serialise units of work about one person or one order number until this transaction ends.

    Orders, touches and claims arrive on different topics (and over HTTP) and are handled in concurrent
    transactions; without this, an order and a touch committed side by side would each miss the other.
    """
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"attribution:{tenant}:{subject}"))))
