"""The live batch handler posts exactly what the one-by-one handlers post for the same events in the same order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_attribution.accounting import Books
from siyu_attribution.adapters.tables import attribution_shares, attributions, ledger_entries, orders
from siyu_attribution.batch import batch_handler
from siyu_attribution.handlers import event_handlers
from siyu_devstack.stack import Stack
from siyu_devstack.testing import running_service
from siyu_shared.db.engine import unit_of_work
from siyu_shared.events.catalog import LeadCaptured, OrderClosed, OrderPaid, TouchSent
from siyu_shared.events.catalog.common import SourceRef
from siyu_shared.events.registry import EventData, envelope
from siyu_shared.events.topics import TopicNames
from siyu_shared.kafka.runner import Received

pytestmark = pytest.mark.integration
T0 = datetime(2026, 10, 10, 4, tzinfo=UTC)


def _events(tenant: str, tag: str) -> tuple[list[Received[Any]], list[Received[Any]]]:
    """Two batches: orders and touches interleaved (late touches, duplicates, a touch too old, a lead, a close)."""

    def ev(data: EventData, person: str, minute: int) -> Received[Any]:
        env = envelope(
            data,
            tenant=tenant,
            subject=person,
            source="/test",
            event_id=uuid4().hex,
            time=T0 + timedelta(days=3, minutes=minute),
        )
        return Received(envelope=env, data=data)

    def paid(i: int, person: str, days: int) -> OrderPaid:
        return OrderPaid(
            order_id=f"{tag}o{i}",
            order_no=f"{tag}N{i}",
            channel="tmall",
            person_id=person,
            amount_fen=10_000 + i * 37,
            paid_at=T0 + timedelta(days=days),
        )

    def touch(i: int, person: str, days: float, staff: str | None, kind: str = "staff") -> TouchSent:
        return TouchSent.model_validate(
            {
                "touch_id": f"{tag}t{i}",
                "person_id": person,
                "channel": "wecom_1v1",
                "kind": kind,
                "staff_id": staff,
                "occurred_at": T0 + timedelta(days=days),
            }
        )

    p = [f"{tag}p{k}" for k in range(4)]
    first = [
        ev(touch(1, p[0], -2, "s1"), p[0], 0),
        ev(paid(1, p[0], 0), p[0], 1),
        ev(paid(2, p[1], 0), p[1], 2),
        ev(touch(2, p[1], -1, "s2"), p[1], 3),  # late: re-decides o2
        ev(touch(3, p[1], -50, "s3"), p[1], 4),  # too old: changes nothing
        ev(paid(3, p[0], 1), p[0], 5),
        ev(touch(4, p[0], 0.5, "s4"), p[0], 6),  # after o1, before o3: re-decides o3 only
        ev(touch(4, p[0], 0.5, "s4"), p[0], 7),  # the same touch again
        ev(paid(1, p[0], 0), p[0], 8),  # the same order again
    ]
    lead = LeadCaptured.model_validate(
        {
            "lead_id": f"{tag}l1",
            "person_id": p[2],
            "kind": "follow",
            "occurred_at": (T0 - timedelta(days=3)).isoformat(),
            "source": SourceRef(channel="xiaohongshu", account_kind="kol", partner_id="kol1").model_dump(),
        }
    )
    second = [
        ev(touch(5, p[0], -1, "s5"), p[0], 10),  # late for o1 and o3 (known from the first batch)
        ev(lead, p[2], 11),
        ev(paid(4, p[2], 0), p[2], 12),
        ev(OrderClosed(order_id=f"{tag}o2", order_no=f"{tag}N2", person_id=p[1], closed_at=T0), p[1], 13),
        ev(touch(6, p[2], -1, None, "journey"), p[2], 14),
        ev(paid(5, p[3], 2), p[3], 15),
        ev(touch(7, p[3], 1, "s7"), p[3], 16),
    ]
    return first, second


async def _ledger(session: AsyncSession, tenant: str, tag: str) -> dict[str, Any]:
    def strip(value: Any) -> Any:
        return value.replace(tag, "") if isinstance(value, str) else value

    entries = await session.execute(
        select(
            ledger_entries.c.order_id,
            ledger_entries.c.kind,
            ledger_entries.c.account,
            ledger_entries.c.amount_fen,
            ledger_entries.c.rule,
            ledger_entries.c.posted_at,
            ledger_entries.c.period,
        )
        .where(ledger_entries.c.tenant == tenant)
        .order_by(ledger_entries.c.seq)
    )
    heads = await session.execute(
        select(attributions.c.order_id, attributions.c.model, attributions.c.cause, attributions.c.decided_at)
        .where(attributions.c.tenant == tenant)
        .order_by(attributions.c.order_id, attributions.c.seq)
    )
    shares = await session.execute(
        select(attribution_shares.c.payee_id, attribution_shares.c.kind, attribution_shares.c.gross_fen)
        .where(attribution_shares.c.tenant == tenant)
        .order_by(attribution_shares.c.payee_id, attribution_shares.c.gross_fen)
    )
    current = await session.execute(
        select(orders.c.order_id, attributions.c.cause)
        .join(
            attributions,
            (attributions.c.tenant == orders.c.tenant) & (attributions.c.attribution_id == orders.c.attribution_id),
            isouter=True,
        )
        .where(orders.c.tenant == tenant)
        .order_by(orders.c.order_id)
    )
    return {
        "entries": sorted(tuple(map(strip, r)) for r in entries),
        "attributions": [tuple(map(strip, r)) for r in heads],
        "shares": [tuple(r) for r in shares],
        "current": [tuple(map(strip, r)) for r in current],
    }


async def test_a_batch_posts_what_one_event_at_a_time_posts(migrated: Stack, topic_prefix: str) -> None:
    batched, single = f"t{uuid4().hex[:8]}", f"t{uuid4().hex[:8]}"
    books_ = Books(topics=TopicNames(topic_prefix))
    one_by_one = event_handlers(books_, lambda: T0 + timedelta(days=3))
    on_batch = batch_handler(books_, one_by_one)
    async with running_service("attribution", migrated, topic_prefix=topic_prefix) as (app, _):
        sessions = app.state.runtime.sessions
        for batch in _events(batched, "xqa"):
            async with unit_of_work(sessions) as session:
                await on_batch(batch, session)
        for batch in _events(single, "xqb"):
            async with unit_of_work(sessions) as session:
                for event in batch:
                    await one_by_one[event.envelope.type](event, session)
        async with unit_of_work(sessions) as session:
            got = await _ledger(session, batched, "xqa")
            want = await _ledger(session, single, "xqb")
    assert want["entries"], "the scenario posts something"
    assert len(want["attributions"]) > 5, "late touches re-decided orders"
    assert got == want
