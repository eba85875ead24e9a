"""Plans are versioned (an order is paid under the version in force), late claims re-attribute (after settlement as
an adjustment on the next statement), auditor overrides are all kept, tenants never see each other."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually, running_service
from siyu_shared.auth.keys import Scope, issue_key
from siyu_shared.db.engine import unit_of_work
from siyu_shared.events.catalog import OrderCompleted, OrderPaid, TouchSent
from siyu_shared.events.topics import TopicNames

from .conftest import FakeClock, Upstream

pytestmark = pytest.mark.integration


def at(month: int, day: int, hour: int = 4) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


async def key(app: FastAPI, tenant: str, scope: Scope) -> dict[str, str]:
    async with unit_of_work(app.state.runtime.sessions) as session:
        issued = await issue_key(session, tenant=tenant, scopes=(scope,), name=scope)
    return {"X-API-Key": issued.plaintext}


def plan(rate_bps: int, effective_from: str) -> dict[str, Any]:
    return {
        "plan_id": "std",
        "effective_from": effective_from,
        "body": {
            "model": "first_claim",
            "return_window_days": 0,
            "roles": {"staff_1v1": {"rates_bps": {"*": rate_bps}}},
        },
    }


async def test_plan_versions_late_claims_overrides_and_tenant_isolation(
    migrated: Stack, topic_prefix: str, producer: AIOKafkaProducer
) -> None:
    tenant, person = f"t{uuid4().hex[:8]}", f"p{uuid4().hex[:8]}"
    order_a, order_b = f"o{uuid4().hex[:8]}", f"o{uuid4().hex[:8]}"
    clock = FakeClock(now=at(9, 30))
    upstream = Upstream(producer, TopicNames(topic_prefix), tenant)
    async with running_service("attribution", migrated, topic_prefix=topic_prefix, clock=clock) as (app, http):
        admin, writer = await key(app, tenant, "admin"), await key(app, tenant, "write")
        stranger = await key(app, f"x{uuid4().hex[:8]}", "admin")

        assert (
            await http.post("/v1/plans", json=plan(1000, "2026-10-01T00:00:00+08:00"), headers=admin)
        ).status_code == 201
        assert (
            await http.post("/v1/plans", json=plan(300, "2026-10-15T00:00:00+08:00"), headers=admin)
        ).status_code == 201
        assert (
            await http.post("/v1/plans", json=plan(20_000, "2026-10-15T00:00:00+08:00"), headers=admin)
        ).status_code == 422
        assert (
            await http.post("/v1/plans", json=plan(100, "2026-10-15T00:00:00+08:00"), headers=writer)
        ).status_code == 403
        versions = (await http.get("/v1/plans/std", headers=admin)).json()
        assert [(v["version"], v["body"]["roles"]["staff_1v1"]["rates_bps"]["*"]) for v in versions] == [
            (1, 1000),
            (2, 300),
        ]
        assert (await http.get("/v1/plans/std", headers=stranger)).status_code == 404

        touch = TouchSent(
            touch_id=uuid4().hex,
            person_id=person,
            channel="wecom_1v1",
            kind="staff",
            staff_id="s1",
            occurred_at=at(10, 9),
        )
        await upstream.send(touch, person=person)
        paid_a = await upstream.send(
            OrderPaid(
                order_id=order_a, order_no="A", channel="tmall", person_id=person, amount_fen=10_000, paid_at=at(10, 10)
            ),
            person=person,
        )
        await upstream.send(
            OrderPaid(
                order_id=order_b, order_no="B", channel="tmall", person_id=person, amount_fen=10_000, paid_at=at(10, 20)
            ),
            person=person,
        )

        async def decided(order_id: str, payee: str) -> dict[str, Any]:
            response = await http.get(f"/v1/orders/{order_id}/attribution", headers=admin)
            if response.status_code != 200 or response.json()["current"] is None:
                return {}
            current = response.json()["current"]
            return current if any(s["payee_id"] == payee for s in current["shares"]) else {}

        a = await eventually(lambda: decided(order_a, "s1"))
        b = await eventually(lambda: decided(order_b, "s1"))
        assert (a["plan_version"], a["shares"][0]["gross_fen"]) == (1, 1000)
        assert (b["plan_version"], b["shares"][0]["gross_fen"]) == (2, 300)
        assert (await http.get(f"/v1/orders/{order_a}/attribution", headers=stranger)).status_code == 404

        # A completes (no return window in this plan: payable at once); October closes with A on s1's statement.
        clock.now = at(10, 25)
        await upstream.send(
            OrderCompleted(order_id=order_a, order_no="A", person_id=person, completed_at=at(10, 11)), person=person
        )

        async def settled() -> bool:
            return bool((await http.get(f"/v1/orders/{order_a}/attribution", headers=admin)).json()["settled"])

        await eventually(settled)
        clock.now = at(11, 1)
        october = (await http.post("/v1/periods/2026-10/close", headers=admin)).json()["statements"]
        assert [(s["payee_id"], s["total_fen"]) for s in october] == [("s1", 1000)]

        # A late claim on the settled order A: an adjustment on November (s1 gives back, s2 earns), nothing in October.
        clock.now = at(11, 2)
        claimed = await http.post("/v1/claims", json={"order_no": "A", "staff_id": "s2"}, headers=writer)
        assert claimed.status_code == 201 and claimed.json()["reattributed"] is True
        entries = (await http.get("/v1/ledger", params={"order_id": order_a}, headers=admin)).json()
        late = [
            (e["kind"], e["account"], e["amount_fen"], e["period"])
            for e in entries
            if e["posted_at"].startswith("2026-11-02")
        ]
        assert sorted(late) == sorted(
            [
                ("accrual", "expense:commission", 1000, "2026-11"),
                ("accrual", "payable:s2", -1000, "2026-11"),
                ("reversal", "payable:s1", 1000, "2026-11"),
                ("reversal", "expense:commission", -1000, "2026-11"),
            ]
        )
        assert (await http.get("/v1/statements", params={"period": "2026-10"}, headers=admin)).json()[0][
            "total_fen"
        ] == 1000

        # Auditor overrides on B (still held): only admins, a reason is required, every override is kept.
        body = {"payee_id": "s3", "payee_role": "staff_1v1", "reason": "chat log shows s3 closed it"}
        assert (await http.post("/v1/orders/B/overrides", json=body, headers=writer)).status_code == 403
        assert (
            await http.post("/v1/orders/B/overrides", json={**body, "reason": ""}, headers=admin)
        ).status_code == 422
        assert (await http.post("/v1/orders/B/overrides", json=body, headers=stranger)).status_code == 404
        first = await http.post("/v1/orders/B/overrides", json=body, headers=admin)
        assert first.status_code == 201
        second = await http.post(
            "/v1/orders/B/overrides", json={**body, "payee_id": "s4", "reason": "second look"}, headers=admin
        )
        view = second.json()
        assert [o["payee_id"] for o in view["overrides"]] == ["s3", "s4"]
        assert view["current"]["model"] == "override"
        assert [(s["payee_id"], s["gross_fen"]) for s in view["current"]["shares"]] == [("s4", 300)]
        held = (await http.get("/v1/ledger", params={"order_id": order_b}, headers=admin)).json()
        owed: dict[str, int] = {}
        for e in held:
            if e["account"].startswith("held:"):
                owed[e["payee_id"]] = owed.get(e["payee_id"], 0) - e["amount_fen"]
        assert owed == {"s1": 0, "s3": 0, "s4": 300}

        # A redelivered payment changes nothing.
        before = len((await http.get("/v1/ledger", headers=admin)).json())
        await upstream.resend([paid_a])
        await upstream.send(OrderPaid.model_validate(paid_a.data), person=person)  # same order, new event id
        await upstream.send(touch, person=person)
        # A later order of the same person travels behind them on the same partition: once decided, they were handled.
        order_c = f"o{uuid4().hex[:8]}"
        await upstream.send(
            OrderPaid(
                order_id=order_c, order_no="C", channel="tmall", person_id=person, amount_fen=10_000, paid_at=at(11, 3)
            ),
            person=person,
        )
        await eventually(lambda: decided(order_c, "s1"))
        after = [e for e in (await http.get("/v1/ledger", headers=admin)).json() if e["order_id"] != order_c]
        assert len(after) == before
