"""Use cases on the books, shared by the event handlers, the API and the background loop.

Each takes the caller's session (the caller owns the transaction), locks the order, loads its facts, asks the
pure book what to post, appends the entries and queues the matching events through the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_attribution.adapters import books, live, projections
from siyu_attribution.adapters.tables import orders
from siyu_attribution.domain import book
from siyu_attribution.domain.ledger import Entry, StatementLine, stable_id
from siyu_attribution.domain.periods import period_bounds, period_of
from siyu_attribution.domain.plans import DEFAULT_PLAN, PlanVersion, in_force
from siyu_shared.events.catalog.commissions import CommissionAccrued, CommissionReversed, StatementClosed
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import envelope
from siyu_shared.events.topics import TopicNames
from siyu_shared.messaging.outbox import add_to_outbox

SOURCE = "/siyu/attribution"


class PeriodNotClosable(ValueError):
    """The period is still running, or already closed."""


@dataclass(frozen=True, slots=True)
class Books:
    """What every use case needs besides the session: where events go."""

    topics: TopicNames


async def plan_in_force(session: AsyncSession, *, tenant: str, at: datetime) -> PlanVersion:
    return in_force(await projections.plan_versions(session, tenant=tenant), at)


async def plan_of(session: AsyncSession, *, tenant: str, plan_id: str, version: int) -> PlanVersion:
    for plan in await projections.plan_versions(session, tenant=tenant, plan_id=plan_id):
        if plan.version == version:
            return plan
    return DEFAULT_PLAN


async def reattribute_order(
    session: AsyncSession, books_: Books, *, tenant: str, order_id: str, cause: str, at: datetime
) -> bool:
    """Decide (again) who earns the order with all evidence known now; post the difference. True if it changed."""
    await books.lock_books(session, tenant=tenant, exclusive=False)
    row = await projections.lock_order(session, tenant=tenant, order_id=order_id)
    if row is None:
        return False
    plan = await plan_of(session, tenant=tenant, plan_id=row.plan_id, version=row.plan_version)
    order = row.facts
    current = (
        await books.attribution(session, tenant=tenant, order_id=order_id, attribution_id=row.attribution_id)
        if row.attribution_id
        else None
    )
    evidence = await projections.evidence(session, tenant=tenant, order=order, since=order.paid_at - plan.body.lookback)
    month_gmv: dict[str, int] = {}
    month_commission: dict[str, int] = {}
    if any(t.tiers or t.cap_per_month_fen is not None for t in plan.body.roles.values()):
        start, end = period_bounds(period_of(order.paid_at))
        payees = sorted({c.staff_id for c in evidence.claims} | {t.staff_id for t in evidence.touches if t.staff_id})
        payees += sorted({s.partner_id for s in evidence.sources} | {o.payee_id for o in evidence.overrides})
        month_gmv, month_commission = await books.month_figures(
            session, tenant=tenant, payees=payees, period_start=start, period_end=end, exclude_order=order_id
        )
    existing = await books.entries_of_order(session, tenant=tenant, order_id=order_id)
    outcome = book.reattribute(
        tenant=tenant,
        order=order,
        evidence=evidence,
        plan=plan,
        existing=existing,
        current=current,
        settled=row.settled,
        cause=cause,
        at=at,
        last_closed=await books.last_closed(session, tenant=tenant),
        month_gmv=month_gmv,
        month_commission=month_commission,
    )
    if outcome.attribution is None:
        return False
    await books.add_attribution(session, tenant=tenant, record=outcome.attribution)
    await projections.update_order(
        session, tenant=tenant, order_id=order_id, attribution_id=outcome.attribution.attribution_id
    )
    await _append(session, books_, tenant=tenant, person_id=order.person_id, new=outcome.entries, reason=cause)
    return True


async def rescale_order(
    session: AsyncSession, books_: Books, *, tenant: str, order_id: str, cause: str, at: datetime
) -> None:
    """After a refund or a close: proportional reversals under the order's current attribution."""
    await books.lock_books(session, tenant=tenant, exclusive=False)
    row = await projections.lock_order(session, tenant=tenant, order_id=order_id)
    if row is None or row.attribution_id is None:
        return
    current = await books.attribution(session, tenant=tenant, order_id=order_id, attribution_id=row.attribution_id)
    if current is None:
        return
    outcome = book.rescale(
        tenant=tenant,
        order=row.facts,
        current=current,
        existing=await books.entries_of_order(session, tenant=tenant, order_id=order_id),
        settled=row.settled,
        cause=cause,
        at=at,
        last_closed=await books.last_closed(session, tenant=tenant),
    )
    await _append(session, books_, tenant=tenant, person_id=row.facts.person_id, new=outcome.entries, reason=cause)


async def settle_order(session: AsyncSession, books_: Books, *, tenant: str, order_id: str) -> bool:
    """The holding period of the order is over: its held commission becomes payable, dated when it fell due."""
    await books.lock_books(session, tenant=tenant, exclusive=False)
    row = await projections.lock_order(session, tenant=tenant, order_id=order_id)
    if row is None or row.settled or row.settle_due_at is None:
        return False
    if row.attribution_id is not None:
        current = await books.attribution(session, tenant=tenant, order_id=order_id, attribution_id=row.attribution_id)
        if current is not None:
            new = book.release(
                tenant=tenant,
                order=row.facts,
                current=current,
                existing=await books.entries_of_order(session, tenant=tenant, order_id=order_id),
                at=row.settle_due_at,
                last_closed=await books.last_closed(session, tenant=tenant),
            )
            await books.append_entries(session, tenant=tenant, new=new)
    await projections.update_order(session, tenant=tenant, order_id=order_id, settled_at=row.settle_due_at)
    return True


async def complete_order(
    session: AsyncSession, books_: Books, *, tenant: str, order_id: str, completed_at: datetime, now: datetime
) -> None:
    await books.lock_books(session, tenant=tenant, exclusive=False)
    row = await projections.lock_order(session, tenant=tenant, order_id=order_id)
    if row is None or row.facts.completed_at is not None:
        return
    plan = await plan_of(session, tenant=tenant, plan_id=row.plan_id, version=row.plan_version)
    due = completed_at + timedelta(days=plan.body.return_window_days)
    await projections.update_order(
        session, tenant=tenant, order_id=order_id, completed_at=completed_at, settle_due_at=due
    )
    if due <= now:
        await settle_order(session, books_, tenant=tenant, order_id=order_id)


async def settle_due(
    session: AsyncSession, books_: Books, *, now: datetime, tenant: str | None = None, limit: int = 500
) -> int:
    """Settle orders whose holding period ended by ``now`` (the background loop, and before a period closes)."""
    """One set of statements per tenant for the whole batch (``settle_order`` on each, without its round trips)."""
    stmt = (
        select(orders)
        .where(orders.c.settled_at.is_(None), orders.c.settle_due_at <= now)
        .order_by(orders.c.settle_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if tenant is not None:
        stmt = stmt.where(orders.c.tenant == tenant)
    due = projections.order_rows((await session.execute(stmt)).all())
    by_tenant: dict[str, list[projections.OrderRow]] = {}
    for row in due:
        by_tenant.setdefault(row.tenant, []).append(row)
    for due_tenant, rows in by_tenant.items():
        await books.lock_books(session, tenant=due_tenant, exclusive=False)
        last_closed = await books.last_closed(session, tenant=due_tenant)
        current = await live.current_attributions(
            session,
            tenant=due_tenant,
            pairs=[(r.facts.order_id, r.attribution_id) for r in rows if r.attribution_id is not None],
        )
        existing = await live.entries_of_orders(session, tenant=due_tenant, order_ids=[r.facts.order_id for r in rows])
        new: list[Entry] = []
        settled: dict[str, datetime] = {}
        for row in rows:
            assert row.settle_due_at is not None  # selected by it
            record = current.get(row.facts.order_id) if row.attribution_id is not None else None
            if record is not None:
                new += book.release(
                    tenant=due_tenant,
                    order=row.facts,
                    current=record,
                    existing=existing.get(row.facts.order_id, ()),
                    at=row.settle_due_at,
                    last_closed=last_closed,
                )
            settled[row.facts.order_id] = row.settle_due_at
        await books.append_entries(session, tenant=due_tenant, new=new)
        await live.set_settled(session, tenant=due_tenant, settled=settled)
    return len(due)


async def close_period(
    session: AsyncSession, books_: Books, *, tenant: str, period: str, now: datetime
) -> list[StatementLine]:
    """Close ``period`` (and any earlier open one) into immutable statements per payee; announce each."""
    if period >= period_of(now):
        raise PeriodNotClosable(f"period {period} is still running")
    # Exclusive first: postings (which hold the books shared) wait, and two closes cannot deadlock on an upgrade.
    await books.lock_books(session, tenant=tenant, exclusive=True)
    while await settle_due(session, books_, now=now, tenant=tenant):
        pass
    closed = await books.last_closed(session, tenant=tenant)
    if closed is not None and period <= closed:
        raise PeriodNotClosable(f"period {period} is already closed")
    lines = [
        StatementLine(stable_id(tenant, "statement", payee, p), payee, p, total, count)
        for p, payee, total, count in await books.statement_lines(session, tenant=tenant, after=closed, through=period)
    ]
    await books.add_statements(session, tenant=tenant, lines=lines, closed_at=now)
    await books.add_period_close(session, tenant=tenant, period=period, closed_at=now, count=len(lines))
    events = [
        envelope(
            StatementClosed(
                statement_id=s.statement_id,
                payee_id=s.payee_id,
                period=s.period,
                total_fen=s.total_fen,
                entry_count=s.entry_count,
                closed_at=now,
            ),
            tenant=tenant,
            subject=s.payee_id,
            source=SOURCE,
            event_id=stable_id(tenant, "statement.closed", s.statement_id),
            time=now,
        )
        for s in lines
    ]
    await add_to_outbox(session, events, topics=books_.topics)
    return lines


async def _append(
    session: AsyncSession, books_: Books, *, tenant: str, person_id: str, new: Sequence[Entry], reason: str
) -> None:
    await books.append_entries(session, tenant=tenant, new=new)
    await add_to_outbox(session, movement_events(tenant, person_id, new, reason), topics=books_.topics)


def movement_events(tenant: str, person_id: str, new: Sequence[Entry], reason: str) -> list[CloudEvent]:
    """One `commission.accrued` / `commission.reversed` per transaction, described by its payee-side leg."""
    out: list[CloudEvent] = []
    for entry in new:
        if entry.account.startswith("expense:") or entry.kind == "settlement":
            continue
        common = {
            "entry_id": entry.entry_id,
            "order_id": entry.order_id,
            "payee_id": entry.payee_id,
            "payee_role": entry.payee_role,
            "amount_fen": abs(entry.amount_fen),
            "plan_id": entry.plan_id,
            "plan_version": entry.plan_version,
            "attribution_id": entry.attribution_id,
            "period": entry.period,
            "occurred_at": entry.posted_at,
            "rule": entry.rule,
            "account": entry.account,
        }
        data = (
            CommissionAccrued.model_validate(common)
            if entry.kind == "accrual"
            else CommissionReversed.model_validate({**common, "reason": reason[:200]})
        )
        out.append(
            envelope(
                data,
                tenant=tenant,
                subject=person_id,
                source=SOURCE,
                event_id=stable_id(tenant, "movement", entry.txn_id),
                time=entry.posted_at,
            )
        )
    return out
