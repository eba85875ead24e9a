"""A touch that arrives after the order, about a moment inside the lookback window, re-attributes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from siyu_attribution.adapters.tables import touches
from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually, running_service
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import unit_of_work
from siyu_shared.events.catalog import OrderClosed, OrderPaid, PersonMerged, TouchSent
from siyu_shared.events.topics import TopicNames

from .conftest import FakeClock, Upstream

pytestmark = pytest.mark.integration
PAID = datetime(2026, 10, 10, 4, tzinfo=UTC)


async def test_a_late_touch_reattributes_before_settlement_and_a_cancelled_order_reverses(
    migrated: Stack, topic_prefix: str, producer: AIOKafkaProducer
) -> None:
    tenant, person, order_id = f"t{uuid4().hex[:8]}", f"p{uuid4().hex[:8]}", uuid4().hex
    upstream = Upstream(producer, TopicNames(topic_prefix), tenant)
    async with running_service("attribution", migrated, topic_prefix=topic_prefix, clock=FakeClock()) as (
        app,
        http,
    ):
        async with unit_of_work(app.state.runtime.sessions) as session:
            reader = {"X-API-Key": (await issue_key(session, tenant=tenant, scopes=("read",), name="r")).plaintext}

        async def view(expect_payees: set[str]) -> dict[str, Any]:
            response = await http.get(f"/v1/orders/{order_id}/attribution", headers=reader)
            if response.status_code != 200 or response.json()["current"] is None:
                return {}
            payees = {s["payee_id"] for s in response.json()["current"]["shares"]}
            return response.json() if payees == expect_payees else {}

        await upstream.send(
            OrderPaid(
                order_id=order_id, order_no="N1", channel="tmall", person_id=person, amount_fen=10_000, paid_at=PAID
            ),
            person=person,
        )
        await eventually(lambda: view(set()))  # nobody to credit yet
        # Too old for the 30-day lookback: changes nothing. Inside it: the staff earns the order.
        for staff, before in (("too_early", timedelta(days=40)), ("in_window", timedelta(days=2))):
            await upstream.send(
                TouchSent(
                    touch_id=uuid4().hex,
                    person_id=person,
                    channel="wecom_1v1",
                    kind="staff",
                    staff_id=staff,
                    occurred_at=PAID - before,
                ),
                person=person,
            )
        decided = await eventually(lambda: view({"in_window"}))
        assert len(decided["history"]) == 2
        assert decided["current"]["cause"].startswith("touch:")
        ledger = (await http.get("/v1/ledger", params={"order_id": order_id}, headers=reader)).json()
        assert sorted((e["account"], e["amount_fen"]) for e in ledger) == [
            ("expense:commission", 500),
            ("held:in_window", -500),
        ]

        # The order is cancelled before completing: what it held for the staff is reversed.
        await upstream.send(
            OrderClosed(order_id=order_id, order_no="N1", person_id=person, closed_at=PAID + timedelta(days=1)),
            person=person,
        )

        async def reversed_() -> list[dict[str, Any]]:
            ledger = (await http.get("/v1/ledger", params={"order_id": order_id}, headers=reader)).json()
            return ledger if any(e["kind"] == "reversal" for e in ledger) else []

        ledger = await eventually(reversed_)
        assert sum(e["amount_fen"] for e in ledger if e["account"] == "held:in_window") == 0
        assert sum(e["amount_fen"] for e in ledger if e["account"] == "expense:commission") == 0


async def test_a_person_merge_brings_the_merged_persons_touches_to_the_survivors_open_orders(
    migrated: Stack, topic_prefix: str, producer: AIOKafkaProducer
) -> None:
    tenant, survivor, merged, order_id = (
        f"t{uuid4().hex[:8]}",
        f"p{uuid4().hex[:8]}",
        f"p{uuid4().hex[:8]}",
        uuid4().hex,
    )
    upstream = Upstream(producer, TopicNames(topic_prefix), tenant)
    async with running_service("attribution", migrated, topic_prefix=topic_prefix, clock=FakeClock()) as (app, http):
        async with unit_of_work(app.state.runtime.sessions) as session:
            reader = {"X-API-Key": (await issue_key(session, tenant=tenant, scopes=("read",), name="r")).plaintext}
        # The staff chatted with the person under their WeCom identity; the order came in under their Tmall one.
        await upstream.send(
            TouchSent(
                touch_id=uuid4().hex,
                person_id=merged,
                channel="wecom_1v1",
                kind="staff",
                staff_id="s_wecom",
                occurred_at=PAID - timedelta(days=1),
            ),
            person=merged,
        )
        await upstream.send(
            OrderPaid(
                order_id=order_id, order_no="M1", channel="tmall", person_id=survivor, amount_fen=10_000, paid_at=PAID
            ),
            person=survivor,
        )

        async def payees() -> set[str]:
            response = await http.get(f"/v1/orders/{order_id}/attribution", headers=reader)
            if response.status_code != 200 or response.json()["current"] is None:
                return set()
            return {s["payee_id"] for s in response.json()["current"]["shares"]} or {"nobody"}

        assert await eventually(payees) == {"nobody"}

        async def touch_recorded() -> bool:
            async with app.state.runtime.sessions() as session:
                found = await session.scalar(
                    select(touches.c.touch_id).where(touches.c.tenant == tenant, touches.c.person_id == merged)
                )
            return found is not None

        await eventually(touch_recorded)  # touches and persons are separate topics: the merge must come after it
        await upstream.send(
            PersonMerged(survivor_id=survivor, merged_ids=[merged], reason="phone", merged_at=PAID + timedelta(days=1)),
            person=survivor,
        )

        async def credited() -> bool:
            return await payees() == {"s_wecom"}

        await eventually(credited)
