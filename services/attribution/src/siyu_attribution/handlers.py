"""One function per consumed event type: record the fact, then let the books decide what it changes.

Postings are dated by the facts themselves (paid, refunded, completed times; the envelope time for late data),
never by when the worker happened to run, so replaying the same events yields the same ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_attribution import accounting
from siyu_attribution.accounting import Books
from siyu_attribution.adapters import books, projections
from siyu_attribution.domain.facts import Line, OrderFacts, TouchFact
from siyu_shared.events.catalog import (
    LeadCaptured,
    OrderClosed,
    OrderCompleted,
    OrderPaid,
    OrderRefunded,
    PersonMerged,
    TouchSent,
)
from siyu_shared.kafka.runner import Handler, Received

Clock = Callable[[], datetime]


def event_handlers(books_: Books, clock: Clock) -> Mapping[str, Handler]:
    async def on_order_paid(event: Received[OrderPaid], session: AsyncSession) -> None:
        paid = event.data
        order = OrderFacts(
            order_id=paid.order_id,
            order_no=paid.order_no,
            person_id=paid.person_id,
            amount_fen=paid.amount_fen,
            paid_at=paid.paid_at,
            lines=tuple(Line(li.line_id, li.amount_fen, li.category) for li in paid.lines),
            channel=paid.channel,
        )
        await projections.serialize_on(session, tenant=event.tenant, subject=f"person:{paid.person_id}")
        await projections.serialize_on(session, tenant=event.tenant, subject=f"order_no:{paid.order_no}")
        plan = await accounting.plan_in_force(session, tenant=event.tenant, at=paid.paid_at)
        source = paid.source.model_dump(mode="json", exclude_none=True) if paid.source else None
        if await projections.insert_order(session, tenant=event.tenant, order=order, plan=plan, source=source):
            await accounting.reattribute_order(
                session, books_, tenant=event.tenant, order_id=paid.order_id, cause="paid", at=paid.paid_at
            )

    async def on_order_completed(event: Received[OrderCompleted], session: AsyncSession) -> None:
        await accounting.complete_order(
            session,
            books_,
            tenant=event.tenant,
            order_id=event.data.order_id,
            completed_at=event.data.completed_at,
            now=clock(),
        )

    async def on_order_refunded(event: Received[OrderRefunded], session: AsyncSession) -> None:
        refund = event.data
        await books.lock_books(session, tenant=event.tenant, exclusive=False)  # books before order rows, always
        row = await projections.lock_order(session, tenant=event.tenant, order_id=refund.order_id)
        if row is None:
            return  # an order we never saw paid earned no commission
        fresh = await projections.add_refund(
            session,
            tenant=event.tenant,
            refund_id=refund.refund_id,
            order_id=refund.order_id,
            amount_fen=refund.amount_fen,
            refunded_at=refund.refunded_at,
        )
        if not fresh:
            return
        refunded = (
            row.facts.amount_fen
            if refund.full
            else min(row.facts.amount_fen, row.facts.refunded_fen + refund.amount_fen)
        )
        await projections.update_order(session, tenant=event.tenant, order_id=refund.order_id, refunded_fen=refunded)
        await accounting.rescale_order(
            session,
            books_,
            tenant=event.tenant,
            order_id=refund.order_id,
            cause=f"refund:{refund.refund_id}",
            at=refund.refunded_at,
        )

    async def on_order_closed(event: Received[OrderClosed], session: AsyncSession) -> None:
        await books.lock_books(session, tenant=event.tenant, exclusive=False)
        row = await projections.lock_order(session, tenant=event.tenant, order_id=event.data.order_id)
        if row is None or row.facts.closed_at is not None:
            return
        await projections.update_order(
            session, tenant=event.tenant, order_id=event.data.order_id, closed_at=event.data.closed_at
        )
        await accounting.rescale_order(
            session, books_, tenant=event.tenant, order_id=event.data.order_id, cause="closed", at=event.data.closed_at
        )

    async def on_touch_sent(event: Received[TouchSent], session: AsyncSession) -> None:
        sent = event.data
        await projections.serialize_on(session, tenant=event.tenant, subject=f"person:{sent.person_id}")
        touch = TouchFact(sent.touch_id, sent.kind, sent.channel, sent.occurred_at, sent.staff_id, sent.persona)
        fresh = await projections.add_touch(
            session, tenant=event.tenant, person_id=sent.person_id, touch=touch, campaign_id=sent.campaign_id
        )
        if fresh:
            await _late_data(
                session, event.tenant, sent.person_id, sent.occurred_at, f"touch:{sent.touch_id}", event.envelope.time
            )

    async def on_lead_captured(event: Received[LeadCaptured], session: AsyncSession) -> None:
        lead = event.data
        await projections.serialize_on(session, tenant=event.tenant, subject=f"person:{lead.person_id}")
        fresh = await projections.add_lead(
            session,
            tenant=event.tenant,
            values={
                "lead_id": lead.lead_id,
                "person_id": lead.person_id,
                "channel": lead.source.channel,
                "account_kind": lead.source.account_kind,
                "partner_id": lead.source.partner_id,
                "campaign_id": lead.source.campaign_id,
                "occurred_at": lead.occurred_at,
            },
        )
        if fresh and lead.source.partner_id and lead.source.account_kind in ("kol", "koc"):
            await _late_data(
                session, event.tenant, lead.person_id, lead.occurred_at, f"lead:{lead.lead_id}", event.envelope.time
            )

    async def _late_data(
        session: AsyncSession, tenant: str, person_id: str, occurred_at: datetime, cause: str, at: datetime
    ) -> None:
        """A touch or lead about a moment before orders we already attributed: those orders are decided again."""
        for order_id in await projections.order_ids_of_person(
            session, tenant=tenant, person_id=person_id, paid_from=occurred_at
        ):
            await accounting.reattribute_order(session, books_, tenant=tenant, order_id=order_id, cause=cause, at=at)

    async def on_person_merged(event: Received[PersonMerged], session: AsyncSession) -> None:
        """Fold the merged persons into the survivor; its unsettled orders are decided again on all its touches.

        Settled orders stay as they are: a merge is new knowledge, not a claim, and payroll already counted them.
        """
        merged = event.data
        for person in sorted({merged.survivor_id, *merged.merged_ids}):
            await projections.serialize_on(session, tenant=event.tenant, subject=f"person:{person}")
        await projections.merge_persons(
            session, tenant=event.tenant, survivor=merged.survivor_id, merged=merged.merged_ids
        )
        for order_id in await projections.order_ids_of_person(
            session,
            tenant=event.tenant,
            person_id=merged.survivor_id,
            paid_from=datetime.min.replace(tzinfo=UTC),
            unsettled_only=True,
        ):
            await accounting.reattribute_order(
                session,
                books_,
                tenant=event.tenant,
                order_id=order_id,
                cause=f"merge:{event.envelope.id}",
                at=event.envelope.time,
            )

    handlers: dict[str, Handler] = {
        OrderPaid.event_type: on_order_paid,
        OrderCompleted.event_type: on_order_completed,
        OrderRefunded.event_type: on_order_refunded,
        OrderClosed.event_type: on_order_closed,
        TouchSent.event_type: on_touch_sent,
        LeadCaptured.event_type: on_lead_captured,
        PersonMerged.event_type: on_person_merged,
    }
    return handlers
