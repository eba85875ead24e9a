"""The live consumer's batch handler: a partition batch of events in a few statements.

Runs of paid orders and touches (the bulk of the traffic) are handled set-wise: the batch's new orders and
touches are inserted with one statement each, the state of the persons involved (their orders, locked; touches,
partner sources; claims and overrides by order number; current attributions; ledger entries) is loaded with a
few queries, and the events are then replayed *in partition order* on that state in memory with the pure book,
exactly as the one-by-one handlers would have decided them (an order only sees the touches that came before it
in the batch; a touch re-decides only the orders known before it). Attributions, entries, order pointers and
outbox events are written in bulk at the end of the run.

Every other event (completions, refunds, closes, leads, merges), and runs under a plan with tiers or monthly
caps (which depend on the month's figures of other orders), go through the one-by-one handlers, in order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_attribution import accounting
from siyu_attribution.accounting import Books
from siyu_attribution.adapters import books, live, projections
from siyu_attribution.adapters.projections import OrderRow
from siyu_attribution.adapters.tables import orders, touches
from siyu_attribution.domain import book
from siyu_attribution.domain.book import AttributionRecord
from siyu_attribution.domain.facts import Evidence, OrderFacts, SourceFact, TouchFact
from siyu_attribution.domain.ledger import Entry
from siyu_attribution.domain.plans import DEFAULT_PLAN, PlanVersion, in_force
from siyu_shared.events.catalog import OrderPaid, TouchSent
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.kafka.runner import BatchHandler, Handler, Received
from siyu_shared.messaging.outbox import add_to_outbox

BULK_TYPES = frozenset({OrderPaid.event_type, TouchSent.event_type})
_BEFORE_ALL = -1


def batch_handler(books_: Books, one_by_one: Mapping[str, Handler]) -> BatchHandler:
    async def on_batch(events: list[Received[Any]], session: AsyncSession) -> None:
        run: list[Received[Any]] = []
        for event in events:
            if event.envelope.type in BULK_TYPES:
                run.append(event)
                continue
            if run:
                await _handle_run(session, books_, one_by_one, run)
                run = []
            await one_by_one[event.envelope.type](event, session)
        if run:
            await _handle_run(session, books_, one_by_one, run)

    return on_batch


async def _handle_run(
    session: AsyncSession, books_: Books, one_by_one: Mapping[str, Handler], run: list[Received[Any]]
) -> None:
    by_tenant: dict[str, list[tuple[int, Received[Any]]]] = defaultdict(list)
    for position, event in enumerate(run):
        by_tenant[event.tenant].append((position, event))
    for tenant in sorted(by_tenant):
        events = by_tenant[tenant]
        plans = await projections.plan_versions(session, tenant=tenant)
        if any(_needs_month_figures(p) for p in (*plans, DEFAULT_PLAN)):
            for _, event in events:  # tiers and monthly caps read other orders' figures: one at a time
                await one_by_one[event.envelope.type](event, session)
            continue
        await _Run(session, books_, tenant, plans).handle(events)


def _needs_month_figures(plan: PlanVersion) -> bool:
    return any(t.tiers or t.cap_per_month_fen is not None for t in plan.body.roles.values())


@dataclass(slots=True)
class _OrderState:
    row: OrderRow
    known_from: int  # the batch position from which the one-by-one path would have seen the order
    current: AttributionRecord | None
    entries: list[Entry]


@dataclass(slots=True)
class _Person:
    touches: list[tuple[int, TouchFact]] = field(default_factory=list)
    sources: list[SourceFact] = field(default_factory=list)
    orders: list[_OrderState] = field(default_factory=list)


class _Run:
    def __init__(self, session: AsyncSession, books_: Books, tenant: str, plans: list[PlanVersion]) -> None:
        self.session = session
        self.books = books_
        self.tenant = tenant
        self.plans = plans
        self.plan_by_key = {(p.plan_id, p.version): p for p in plans}
        self.records: list[AttributionRecord] = []
        self.entries: list[Entry] = []
        self.events: list[CloudEvent] = []
        self.pointers: dict[str, str] = {}

    async def handle(self, events: list[tuple[int, Received[Any]]]) -> None:
        session, tenant = self.session, self.tenant
        paid: dict[str, tuple[int, OrderPaid]] = {}
        sent: dict[str, tuple[int, Received[TouchSent]]] = {}
        persons: set[str] = set()
        order_nos: set[str] = set()
        for position, event in events:
            if isinstance(event.data, OrderPaid):
                paid.setdefault(event.data.order_id, (position, event.data))
                persons.add(event.data.person_id)
                order_nos.add(event.data.order_no)
            else:
                sent.setdefault(event.data.touch_id, (position, event))
                persons.add(event.data.person_id)
        # Same locks as the one-by-one path, taken at once in a fixed order. The person locks still matter across
        # replicas (two members handling a partition during a rebalance) and for merges; the order number lock
        # keeps a claim made over HTTP from racing the insert of its order.
        await live.serialize_on_all(
            session,
            keys=[f"attribution:{tenant}:person:{p}" for p in persons]
            + [f"attribution:{tenant}:order_no:{n}" for n in order_nos],
        )
        await books.lock_books(session, tenant=tenant, exclusive=False)
        fresh_touches = await live.insert_new(
            session,
            touches,
            "touch_id",
            [
                {
                    "tenant": tenant,
                    "touch_id": e.data.touch_id,
                    "person_id": e.data.person_id,
                    "kind": e.data.kind,
                    "channel": e.data.channel,
                    "staff_id": e.data.staff_id,
                    "persona": e.data.persona,
                    "campaign_id": e.data.campaign_id,
                    "occurred_at": e.data.occurred_at,
                }
                for _, e in sent.values()
            ],
        )
        fresh_orders = await live.insert_new(
            session, orders, "order_id", [self._order_values(o) for _, o in paid.values()]
        )
        # State of every person in the run, as of the start of the run (plus what the run adds, by position).
        people: dict[str, _Person] = defaultdict(_Person)
        person_list = sorted(persons)
        for person_id, touch in await live.touches_of_persons(session, tenant=tenant, persons=person_list):
            pos = sent[touch.touch_id][0] if touch.touch_id in fresh_touches else _BEFORE_ALL
            people[person_id].touches.append((pos, touch))
        for person_id, source in await live.sources_of_persons(session, tenant=tenant, persons=person_list):
            people[person_id].sources.append(source)
        rows = await live.orders_of_persons(session, tenant=tenant, persons=person_list)
        self.claims, self.overrides = await live.claims_and_overrides(
            session, tenant=tenant, order_nos=sorted({r.facts.order_no for r in rows})
        )
        current = await live.current_attributions(
            session, tenant=tenant, pairs=[(r.facts.order_id, r.attribution_id) for r in rows if r.attribution_id]
        )
        entries = await live.entries_of_orders(session, tenant=tenant, order_ids=[r.facts.order_id for r in rows])
        for row in rows:
            order_id = row.facts.order_id
            known_from = paid[order_id][0] if order_id in fresh_orders else _BEFORE_ALL
            people[row.facts.person_id].orders.append(
                _OrderState(row, known_from, current.get(order_id), list(entries.get(order_id, ())))
            )
        for person in people.values():
            person.orders.sort(key=lambda o: (o.row.facts.paid_at, o.row.facts.order_id))
        self.last_closed = await books.last_closed(session, tenant=tenant)

        for position, event in events:
            data = event.data
            if isinstance(data, OrderPaid):
                if data.order_id not in fresh_orders or paid[data.order_id][0] != position:
                    continue
                person = people[data.person_id]
                state = next(o for o in person.orders if o.row.facts.order_id == data.order_id)
                self._reattribute(person, state, position, cause="paid", at=data.paid_at)
            else:
                if data.touch_id not in fresh_touches or sent[data.touch_id][0] != position:
                    continue
                person = people[data.person_id]
                for state in person.orders:  # order_ids_of_person: paid since the touch, (paid_at, order_id)
                    if state.known_from < position and state.row.facts.paid_at >= data.occurred_at:
                        self._reattribute(
                            person, state, position, cause=f"touch:{data.touch_id}", at=event.envelope.time
                        )

        await live.add_attributions(session, tenant=tenant, records=self.records)
        await live.set_attribution_ids(session, tenant=tenant, current=self.pointers)
        await books.append_entries(session, tenant=tenant, new=self.entries)
        if self.events:
            await add_to_outbox(session, self.events, topics=self.books.topics)

    def _order_values(self, paid: OrderPaid) -> dict[str, Any]:
        plan = in_force(self.plans, paid.paid_at)
        return {
            "tenant": self.tenant,
            "order_id": paid.order_id,
            "order_no": paid.order_no,
            "person_id": paid.person_id,
            "channel": paid.channel,
            "amount_fen": paid.amount_fen,
            "lines": [
                {"line_id": li.line_id, "amount_fen": li.amount_fen, "category": li.category} for li in paid.lines
            ],
            "source": paid.source.model_dump(mode="json", exclude_none=True) if paid.source else None,
            "paid_at": paid.paid_at,
            "plan_id": plan.plan_id,
            "plan_version": plan.version,
        }

    def _reattribute(self, person: _Person, state: _OrderState, position: int, *, cause: str, at: datetime) -> None:
        """``accounting.reattribute_order`` on the in-memory state (no tiers or monthly caps in this tenant)."""
        row = state.row
        order: OrderFacts = row.facts
        plan = self.plan_by_key.get((row.plan_id, row.plan_version), DEFAULT_PLAN)
        since = order.paid_at - plan.body.lookback
        evidence = Evidence(
            touches=tuple(
                t for pos, t in person.touches if pos <= position and since <= t.occurred_at <= order.paid_at
            ),
            sources=tuple(s for s in person.sources if s.occurred_at <= order.paid_at),
            claims=tuple(self.claims.get(order.order_no, ())),
            overrides=tuple(self.overrides.get(order.order_no, ())),
        )
        outcome = book.reattribute(
            tenant=self.tenant,
            order=order,
            evidence=evidence,
            plan=plan,
            existing=state.entries,
            current=state.current,
            settled=row.settled,
            cause=cause,
            at=at,
            last_closed=self.last_closed,
        )
        if outcome.attribution is None:
            return
        state.current = outcome.attribution
        state.entries.extend(outcome.entries)
        self.records.append(outcome.attribution)
        self.pointers[order.order_id] = outcome.attribution.attribution_id
        self.entries.extend(outcome.entries)
        self.events.extend(accounting.movement_events(self.tenant, order.person_id, outcome.entries, cause))
