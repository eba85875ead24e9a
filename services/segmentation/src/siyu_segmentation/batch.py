"""The batch handler: a partition batch of events → facts → tags → `tags.changed`, in a constant number of statements.

The runner hands over a partition batch (in partition order, duplicates removed) in one savepoint. Merges and
erasures are barriers, handled one by one (``handlers.py``) in their place. The fact events between them are
grouped per tenant and cut into *rounds*: round k holds the k-th event of each person, so a person's events still
apply in order and each is re-evaluated on its own (one `tags.changed` per real change, caused by the event that
made it, exactly as one event at a time). A typical batch (persons' events spread over the partition) is one or
two rounds; each round costs a handful of statements, whatever the number of persons in it, and each profile row
is written once per batch:

1. the segment's existing profiles are locked in person order and read once (one statement); the missing ones
   start as new rows in memory;
2. each round: each person's event is folded into its row in Python (``domain/fold.py``); orders, refunds, closes,
   touches are written set-based (one statement each, only when the round has some); one statement reads the
   persons' orders, touches and tags (``bulk.load_round``), the order and touch aggregates of the persons who had
   such events are re-derived from them in Python (``domain/aggregates.py``); the tenant's rules, compiled once
   per rule-set version (``domain/compiled.py``), decide each person's tags; one statement writes the removed,
   gained and re-stamped tags and the outbox rows of the persons whose tag set changed (``bulk.write_changes``);
3. one statement inserts the new profile rows and updates the changed ones (``bulk.write_profiles``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters import bulk
from siyu_segmentation.domain.fold import fold_event
from siyu_segmentation.handlers import Clock, build_barrier_handlers, utc_now
from siyu_segmentation.retag import Retagging, Tagger
from siyu_shared.events.catalog import (
    ContactAdded,
    ContactRemoved,
    GroupJoined,
    GroupLeft,
    LeadCaptured,
    OrderClosed,
    OrderPaid,
    OrderRefunded,
    PersonErased,
    PersonMerged,
    TouchFailed,
    TouchSent,
    TouchSkipped,
)
from siyu_shared.kafka.runner import BatchHandler, BatchHandling, Received

FACT_EVENTS: dict[str, type[Any]] = {
    t.event_type: t
    for t in (
        LeadCaptured,
        ContactAdded,
        ContactRemoved,
        GroupJoined,
        GroupLeft,
        OrderPaid,
        OrderRefunded,
        OrderClosed,
        TouchSent,
        TouchFailed,
        TouchSkipped,
    )
}
BARRIERS = frozenset({PersonMerged.event_type, PersonErased.event_type})
_TOUCH_STATUS = {TouchSent.event_type: "sent", TouchFailed.event_type: "failed", TouchSkipped.event_type: "skipped"}


def build_batch_handling(tagger: Tagger, clock: Clock = utc_now) -> BatchHandling:
    return BatchHandling(types=frozenset(FACT_EVENTS) | BARRIERS, handler=build_batch_handler(tagger, clock))


def build_batch_handler(tagger: Tagger, clock: Clock = utc_now) -> BatchHandler:
    barriers = build_barrier_handlers(tagger, clock)

    async def handle(events: list[Received[Any]], session: AsyncSession) -> None:
        segment: list[Received[Any]] = []
        for event in events:
            if event.envelope.type in BARRIERS:
                await _segment(session, tagger, segment, clock)
                segment = []
                await barriers[event.envelope.type](event, session)
            elif event.envelope.type in FACT_EVENTS:
                segment.append(event)
        await _segment(session, tagger, segment, clock)

    return handle


async def _segment(session: AsyncSession, tagger: Tagger, events: list[Received[Any]], clock: Clock) -> None:
    by_tenant: dict[str, list[Received[Any]]] = {}
    for event in events:
        by_tenant.setdefault(event.tenant, []).append(event)
    for tenant in sorted(by_tenant):
        tenant_events = by_tenant[tenant]
        rule_set = await tagger.begin(session, tenant)  # the tenant lock, shared, for the rest of the transaction
        locked = await bulk.lock_profiles(
            session, tenant=tenant, person_ids=[str(e.data.person_id) for e in tenant_events]
        )
        rounds: list[list[Received[Any]]] = []
        seen: dict[str, int] = {}
        for event in tenant_events:
            person = str(event.data.person_id)
            k = seen.get(person, 0)
            seen[person] = k + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(event)
        retagging = tagger.retagging(session, rule_set=rule_set, tenant=tenant, people=locked)
        for round_events in rounds:
            await _round(session, retagging, tenant, round_events, locked, clock())
        await retagging.finish()


async def _round(
    session: AsyncSession,
    retagging: Retagging,
    tenant: str,
    events: list[Received[Any]],
    locked: dict[str, bulk.LockedProfile],
    now: datetime,
) -> None:
    """At most one event per person: fold, write facts set-based, re-tag the persons."""
    orders: list[dict[str, Any]] = []
    refunds: list[dict[str, Any]] = []
    closes: list[str] = []
    touches: list[dict[str, Any]] = []
    order_persons: list[str] = []
    touch_persons: list[str] = []
    causes: dict[str, str] = {}
    for event in events:
        data, person = event.data, str(event.data.person_id)
        causes[person] = event.envelope.id
        profile = locked[person]
        before = dict(profile.row)
        fold_event(profile.row, data, created=profile.created)
        profile.created = False
        if profile.row != before:
            profile.dirty = True
        if isinstance(data, OrderPaid):
            orders.append(
                {
                    "order_id": data.order_id,
                    "person_id": person,
                    "paid_at": data.paid_at,
                    "amount_fen": data.amount_fen,
                    "categories": sorted({line.category for line in data.lines if line.category}),
                }
            )
            order_persons.append(person)
        elif isinstance(data, OrderRefunded):
            refunds.append(
                {
                    "order_id": data.order_id,
                    "refund_id": data.refund_id,
                    "amount_fen": data.amount_fen,
                    "full": data.full,
                }
            )
            order_persons.append(person)
        elif isinstance(data, OrderClosed):
            closes.append(data.order_id)
            order_persons.append(person)
        elif event.envelope.type in _TOUCH_STATUS:
            touches.append(
                {
                    "touch_id": data.touch_id,
                    "person_id": person,
                    "occurred_at": data.occurred_at,
                    "channel": data.channel,
                    "status": _TOUCH_STATUS[event.envelope.type],
                }
            )
            touch_persons.append(person)
    await bulk.insert_orders(session, tenant=tenant, orders=orders)
    await bulk.apply_refunds(session, tenant=tenant, refunds=refunds)
    await bulk.void_orders(session, tenant=tenant, order_ids=closes)
    await bulk.upsert_touches(session, tenant=tenant, touches=touches)
    await retagging.round(
        causes=causes,
        now=now,
        order_persons=order_persons,
        touch_persons=touch_persons,
    )
