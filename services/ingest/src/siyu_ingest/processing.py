"""Turning a stored delivery into state and events: parse → resolve the person → leads/orders → outbox.

Runs in the worker's transaction (a savepoint per delivery); never commits. Every event id is derived from
what caused it, so re-processing a delivery (after a fix, or a crash) cannot publish anything twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_ingest.adapters import deliveries, identity, records
from siyu_ingest.adapters.channels import ADAPTERS
from siyu_ingest.adapters.channels.base import Credentials, WebhookRequest
from siyu_ingest.adapters.channels.wecom import (
    CONTACT_DETAIL_CHANNEL,
    WeComAdapter,
    contact_detail_key,
    parse_contact_detail,
)
from siyu_ingest.adapters.deliveries import Delivery
from siyu_ingest.adapters.row_writes import RowWrites
from siyu_ingest.context import IngestContext
from siyu_ingest.domain import imports
from siyu_ingest.domain import orders as order_rules
from siyu_ingest.domain.errors import Malformed, NotConfigured
from siyu_ingest.domain.identity import KnownPerson, resolve
from siyu_ingest.domain.models import (
    ContactChange,
    Fact,
    GroupChange,
    Identifier,
    IdentityObservation,
    Lead,
    OrderChange,
)
from siyu_ingest.identity_cache import OwnerCache
from siyu_shared.events.catalog import (
    ContactAdded,
    ContactRemoved,
    GroupJoined,
    GroupLeft,
    LeadCaptured,
    OrderClosed,
    OrderCompleted,
    OrderLine,
    OrderPaid,
    OrderRefunded,
    PersonMerged,
)
from siyu_shared.events.envelope import CloudEvent, deterministic_event_id
from siyu_shared.events.registry import EventData, envelope
from siyu_shared.logging import get_logger

SOURCE = "/siyu/ingest"
IMPORT_CHANNEL = "import"
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Batch:
    """What the worker's batch path shares across its deliveries: owners known from the cache, and persons,
    identifiers and leads held for one write. The two go together: held rows are invisible to SQL until flushed,
    so owners must come from the cache, which the batch keeps up to date as it decides."""

    cache: OwnerCache
    writes: RowWrites


class Unit:
    """One delivery's unit of work: the session, the tenant, and the events it queues."""

    def __init__(
        self,
        session: AsyncSession,
        ctx: IngestContext,
        tenant: str,
        batch: Batch | None = None,
    ) -> None:
        self.session = session
        self.ctx = ctx
        self.tenant = tenant
        self.cache = batch.cache if batch else None
        self.writes = batch.writes if batch else RowWrites(session, hold=False)
        """Persons, identifiers and leads: written at once, or held for one set-wise write (the batch path)."""
        self.events: list[CloudEvent] = []
        """Queued for the outbox by the caller, in order, together with the batch's other events."""

    async def emit(self, data: EventData, *, person_id: str, cause: Sequence[str]) -> None:
        event = envelope(
            data,
            tenant=self.tenant,
            subject=person_id,
            source=SOURCE,
            event_id=deterministic_event_id(data.event_type, self.tenant, *cause),
        )
        self.events.append(event)

    async def person_of(self, observed: Sequence[Identifier]) -> str:
        """Resolve (create, attach, merge) the person behind ``observed``; emits the merge once."""
        if not observed:
            raise Malformed("nothing identifies the person")
        vault = self.ctx.vault
        keys = {i: vault.match_key(i.kind, i.value) for i in dict.fromkeys(observed)}
        if self.cache is not None:
            owners = await self.cache.lookup(self.session, tenant=self.tenant, keys=keys)
        else:
            owners = await identity.owners(self.session, tenant=self.tenant, keys=keys)
        first = next(iter(keys.values()))
        decision = resolve(
            observed=list(keys),
            owners=owners,
            new_person_id=deterministic_event_id("person", self.tenant, first),
        )
        if decision.merged_ids:
            await self.writes.flush()  # the merge rewrites rows that may still be held
            await identity.merge(
                self.session, tenant=self.tenant, survivor=decision.person_id, merged=decision.merged_ids
            )
            merged = sorted(decision.merged_ids)
            await self.emit(
                PersonMerged(
                    survivor_id=decision.person_id,
                    merged_ids=list(decision.merged_ids),
                    reason=decision.reason or "identifier",
                    merged_at=datetime.now(UTC),
                ),
                person_id=decision.person_id,
                cause=(decision.person_id, *merged),
            )
        if decision.create:
            born = self.cache.birth_time() if self.cache else await identity.database_now(self.session)
            person = KnownPerson(decision.person_id, born)
        else:
            person = next(p for p in owners.values() if p.person_id == decision.person_id)
        if self.cache is not None:
            self.cache.apply(tenant=self.tenant, decision=decision, keys=keys, person=person)
        await self.writes.settle(
            tenant=self.tenant,
            person_id=decision.person_id,
            create=decision.create,
            created_at=person.created_at if decision.create else None,
            entries=[(i, keys[i], vault.seal(i.value.encode(), context=self.tenant.encode())) for i in decision.attach],
        )
        return decision.person_id


@dataclass(frozen=True, slots=True)
class Parsed:
    """A delivery's facts, and what a WeCom event needs to fetch the contact's detail afterwards."""

    facts: list[Fact]
    wecom: tuple[WeComAdapter, WebhookRequest, Credentials] | None = None


async def parse_delivery(session: AsyncSession, *, ctx: IngestContext, delivery: Delivery) -> Parsed:
    """The facts a stored delivery states (pure parsing once the credentials are known)."""
    if delivery.channel == IMPORT_CHANNEL:
        return Parsed(imports.facts_of(orjson.loads(delivery.body)))
    if delivery.channel == CONTACT_DETAIL_CHANNEL:
        return Parsed(parse_contact_detail(delivery.body))
    adapter = ADAPTERS.get(delivery.channel)
    if adapter is None:
        raise NotConfigured(f"unknown channel {delivery.channel!r}")
    creds = await ctx.credentials.get(session, tenant=delivery.tenant, channel=delivery.channel)
    if creds is None:
        raise NotConfigured(f"no {delivery.channel} credentials for the tenant")
    request = WebhookRequest(
        body=delivery.body, headers=delivery.headers, query=delivery.query, received_at=delivery.received_at
    )
    facts = adapter.parse(request, creds)
    return Parsed(facts, (adapter, request, creds) if isinstance(adapter, WeComAdapter) else None)


async def apply_parsed(
    session: AsyncSession,
    *,
    ctx: IngestContext,
    delivery: Delivery,
    parsed: Parsed,
    batch: Batch | None,
) -> list[CloudEvent]:
    """Apply a parsed delivery: identity, state, events (returned for the caller to queue in the outbox).

    With ``batch``, persons, identifiers and leads are held in ``batch.writes``: the caller flushes them before it
    commits.
    """
    unit = Unit(session, ctx, delivery.tenant, batch)
    for fact in parsed.facts:
        await apply_fact(unit, fact, delivery_id=delivery.id)
    if parsed.wecom is not None:
        await _fetch_contact_detail(unit, *parsed.wecom)
    return unit.events


async def process_delivery(session: AsyncSession, *, ctx: IngestContext, delivery: Delivery) -> list[CloudEvent]:
    """Parse and apply one stored delivery. Raises Malformed/NotConfigured (and validation errors) to fail it."""
    parsed = await parse_delivery(session, ctx=ctx, delivery=delivery)
    return await apply_parsed(session, ctx=ctx, delivery=delivery, parsed=parsed, batch=None)


async def apply_fact(unit: Unit, fact: Fact, *, delivery_id: int | None) -> None:
    if isinstance(fact, Lead):
        await _lead(unit, fact, delivery_id)
    elif isinstance(fact, ContactChange):
        await _contact(unit, fact)
    elif isinstance(fact, GroupChange):
        await _group(unit, fact)
    elif isinstance(fact, OrderChange):
        await _order(unit, fact)
    elif isinstance(fact, IdentityObservation):
        await unit.person_of(fact.identifiers)


async def _lead(unit: Unit, lead: Lead, delivery_id: int | None) -> None:
    person_id = await unit.person_of(lead.identifiers)
    vault, context = unit.ctx.vault, unit.tenant.encode()
    await unit.writes.lead(
        tenant=unit.tenant,
        lead=lead,
        person_id=person_id,
        delivery_id=delivery_id,
        name_enc=vault.seal(lead.name.encode(), context=context) if lead.name else None,
        partial_phone_enc=vault.seal(lead.partial_phone.encode(), context=context) if lead.partial_phone else None,
    )
    await unit.emit(
        LeadCaptured(
            lead_id=lead.lead_id,
            person_id=person_id,
            kind=lead.kind,
            occurred_at=lead.occurred_at,
            source=lead.source,
            attributes=lead.attributes,
            has_phone=lead.has_phone,
            incentive=lead.incentive,
        ),
        person_id=person_id,
        cause=(lead.lead_id,),
    )


async def _contact(unit: Unit, change: ContactChange) -> None:
    person_id = await unit.person_of(change.identifiers)
    cause = (change.external_userid, change.staff_id, change.occurred_at.isoformat())
    if change.added:
        await unit.emit(
            ContactAdded(
                person_id=person_id,
                external_userid=change.external_userid,
                staff_id=change.staff_id,
                occurred_at=change.occurred_at,
                source=change.source,
                welcome_code_present=change.welcome_code_present,
            ),
            person_id=person_id,
            cause=cause,
        )
    else:
        await unit.emit(
            ContactRemoved(
                person_id=person_id,
                external_userid=change.external_userid,
                staff_id=change.staff_id,
                removed_by=change.removed_by,
                occurred_at=change.occurred_at,
            ),
            person_id=person_id,
            cause=cause,
        )


async def _group(unit: Unit, change: GroupChange) -> None:
    person_id = await unit.person_of(change.identifiers)
    cause = (change.chat_id, change.external_userid, change.occurred_at.isoformat())
    data: EventData = (
        GroupJoined(
            person_id=person_id, chat_id=change.chat_id, join_scene=change.scene, occurred_at=change.occurred_at
        )
        if change.joined
        else GroupLeft(
            person_id=person_id, chat_id=change.chat_id, quit_scene=change.scene, occurred_at=change.occurred_at
        )
    )
    await unit.emit(data, person_id=person_id, cause=cause)


async def _order(unit: Unit, change: OrderChange) -> None:
    state, person_id = await records.load_order(unit.session, tenant=unit.tenant, order_id=change.order_id)
    if change.identifiers:
        buyer = await unit.person_of(change.identifiers)
        person_id = person_id or buyer
    state, emissions = order_rules.apply(state, change)
    if emissions and person_id is None:
        raise Malformed("the order's buyer is unknown")
    if person_id is not None:
        person_id = await identity.current(unit.session, tenant=unit.tenant, person_id=person_id)
    await records.save_order(unit.session, tenant=unit.tenant, change=change, state=state, person_id=person_id)
    for emission in emissions:
        assert person_id is not None
        await _emit_order(unit, emission, person_id)


async def _emit_order(unit: Unit, emission: order_rules.Emission, person_id: str) -> None:
    change = emission.change
    order_id, order_no = change.order_id, change.order_no
    data: EventData
    if change.kind == "paid":
        data = OrderPaid(
            order_id=order_id,
            order_no=order_no,
            channel=change.channel,
            person_id=person_id,
            amount_fen=change.amount_fen,
            paid_at=change.occurred_at,
            lines=[
                OrderLine(line_id=ln.line_id, amount_fen=ln.amount_fen, quantity=ln.quantity) for ln in change.lines
            ],
            shop_id=change.shop_id,
            source=change.source,
        )
        cause: tuple[str, ...] = (order_id,)
    elif change.kind == "refunded":
        refund_id = change.refund_id or order_no
        data = OrderRefunded(
            order_id=order_id,
            order_no=order_no,
            refund_id=refund_id,
            person_id=person_id,
            amount_fen=emission.refund_fen,
            full=emission.full_refund,
            refunded_at=change.occurred_at,
            line_id=change.line_id,
        )
        cause = (order_id, refund_id)
    elif change.kind == "completed":
        data = OrderCompleted(
            order_id=order_id, order_no=order_no, person_id=person_id, completed_at=change.occurred_at
        )
        cause = (order_id,)
    else:
        data = OrderClosed(
            order_id=order_id,
            order_no=order_no,
            person_id=person_id,
            closed_at=change.occurred_at,
            reason=change.reason,
        )
        cause = (order_id,)
    await unit.emit(data, person_id=person_id, cause=cause)


async def _fetch_contact_detail(unit: Unit, adapter: WeComAdapter, request: WebhookRequest, creds: Credentials) -> None:
    """Best effort: fetch remark mobiles/unionid and store them as a delivery of their own (processed next)."""
    corp_secret = creds.get("corp_secret")
    external = adapter.detail_wanted(request, creds)
    if not external or not isinstance(corp_secret, str) or not corp_secret:
        return
    base = str(creds.get("api_base") or unit.ctx.settings.wecom_api_base)
    try:
        body = await unit.ctx.wecom.contact_detail(
            base=base, corp_id=str(creds["corp_id"]), corp_secret=corp_secret, external_userid=external
        )
    except Exception as exc:
        log.warning("wecom_contact_detail_failed", error=repr(exc))
        return
    # Stored on an internal channel that no webhook route serves: nothing a caller sends can become one of these.
    await deliveries.store(
        unit.session,
        tenant=unit.tenant,
        channel=CONTACT_DETAIL_CHANNEL,
        dedupe_key=contact_detail_key(body),
        body=body,
        headers={},
        query={},
    )
