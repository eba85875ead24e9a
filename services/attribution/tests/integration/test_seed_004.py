"""Seed 004 §14 over real Postgres and Kafka: the first 1v1 claim of the order number earns the commission.

The group activator touched the buyer first and gets activity credit only; a partial refund that arrives after
the statement closed becomes a proportional reversal on the next statement, and the closed one never changes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually, read_topic, running_service
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import unit_of_work
from siyu_shared.events.catalog import OrderCompleted, OrderPaid, OrderRefunded, TouchSent
from siyu_shared.events.catalog.orders import OrderLine
from siyu_shared.events.topics import Topic, TopicNames

from .conftest import FakeClock, Upstream

pytestmark = pytest.mark.integration


def at(month: int, day: int, hour: int = 4) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


async def admin_headers(app: FastAPI, tenant: str) -> dict[str, str]:
    async with unit_of_work(app.state.runtime.sessions) as session:
        key = await issue_key(session, tenant=tenant, scopes=("admin",), name="test")
    return {"Authorization": f"Bearer {key.plaintext}"}


async def attribution_of(http: httpx.AsyncClient, order_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await http.get(f"/v1/orders/{order_id}/attribution", headers=headers)
    return response.json() if response.status_code == 200 else {}


def commission(view: dict[str, Any]) -> dict[str, int]:
    return {s["payee_id"]: s["gross_fen"] for s in view["current"]["shares"] if s["kind"] == "commission"}


async def test_first_claim_wins_activator_gets_activity_and_a_late_refund_carries_over(
    migrated: Stack, topic_prefix: str, producer: AIOKafkaProducer
) -> None:
    tenant, person, order_id = f"t{uuid4().hex[:8]}", f"p{uuid4().hex[:8]}", f"tmall:{uuid4().hex[:8]}"
    clock = FakeClock(now=at(10, 3, 6))
    upstream = Upstream(producer, TopicNames(topic_prefix), tenant)
    async with running_service("attribution", migrated, topic_prefix=topic_prefix, clock=clock) as (app, http):
        admin = await admin_headers(app, tenant)
        # The group activator touched the buyer first, then another 1v1 staff chatted with them.
        await upstream.send(
            TouchSent(
                touch_id=uuid4().hex,
                person_id=person,
                channel="wecom_group",
                kind="group",
                staff_id="activator",
                occurred_at=at(10, 1),
            ),
            person=person,
        )
        await upstream.send(
            TouchSent(
                touch_id=uuid4().hex,
                person_id=person,
                channel="wecom_1v1",
                kind="staff",
                staff_id="chatty_1v1",
                occurred_at=at(10, 2),
            ),
            person=person,
        )
        await upstream.send(
            OrderPaid(
                order_id=order_id,
                order_no="TID-1",
                channel="tmall",
                person_id=person,
                amount_fen=100_000,
                paid_at=at(10, 3),
                lines=[OrderLine(line_id="l1", amount_fen=100_000, category="skincare")],
            ),
            person=person,
        )

        # Without a claim yet, the plan's fallback (last touch) credits the last 1v1 staff who chatted. (Topics are
        # consumed independently: a touch handled after the order re-attributes it, so wait for the end state.)
        async def fallback_decided() -> bool:
            view = await attribution_of(http, order_id, admin)
            return bool(view.get("current")) and commission(view) == {"chatty_1v1": 5_000}

        await eventually(fallback_decided)

        # The 1v1 staff who obtained the order number first claims it; later claims change nothing.
        clock.now = at(10, 3, 7)
        first = await http.post("/v1/claims", json={"order_no": "TID-1", "staff_id": "first_1v1"}, headers=admin)
        assert first.status_code == 201, first.text
        assert first.json()["reattributed"] is True
        clock.now = at(10, 3, 8)
        for staff, role in (("chatty_1v1", "staff_1v1"), ("activator", "group_activator")):
            later = await http.post(
                "/v1/claims", json={"order_no": "TID-1", "staff_id": staff, "role": role, "via": "group"}, headers=admin
            )
            assert later.status_code == 201 and later.json()["reattributed"] is False
        view = await attribution_of(http, order_id, admin)
        assert view["current"]["model"] == "first_claim"
        assert commission(view) == {"first_1v1": 5_000}
        activity = [s for s in view["current"]["shares"] if s["kind"] == "activity"]
        assert [(s["payee_id"], s["role"], s["gross_fen"]) for s in activity] == [("activator", "group_activator", 0)]
        assert view["history"][-1]["cause"].startswith("claim:") and len(view["claims"]) == 3

        # Completed on Oct 5; the 7-day return window ends Oct 12; October closes on Nov 1 (Shanghai).
        await upstream.send(
            OrderCompleted(order_id=order_id, order_no="TID-1", person_id=person, completed_at=at(10, 5)), person=person
        )
        await eventually(lambda: _completed(http, order_id, admin))
        clock.now = datetime(2026, 10, 31, 17, tzinfo=UTC)
        closed = await http.post("/v1/periods/2026-10/close", headers=admin)
        assert closed.status_code == 200, closed.text
        assert [(s["payee_id"], s["total_fen"]) for s in closed.json()["statements"]] == [("first_1v1", 5_000)]
        assert (await http.post("/v1/periods/2026-10/close", headers=admin)).status_code == 409
        assert (await http.post("/v1/periods/2026-11/close", headers=admin)).status_code == 409  # still running

        # A partial refund dated in October arrives after October closed (and is delivered twice).
        refund = await upstream.send(
            OrderRefunded(
                order_id=order_id,
                order_no="TID-1",
                refund_id="R1",
                person_id=person,
                amount_fen=30_000,
                full=False,
                refunded_at=at(10, 20),
            ),
            person=person,
        )
        await upstream.resend([refund])
        reversal = await eventually(
            lambda: _entries(http, admin, order_id=order_id, kind="reversal", payee="first_1v1")
        )
        assert {(e["account"], e["amount_fen"], e["period"]) for e in reversal} == {
            ("payable:first_1v1", 1_500, "2026-11"),
            ("expense:commission", -1_500, "2026-11"),
        }

        # The October statement is untouched; November carries the reversal.
        october = (await http.get("/v1/statements", params={"period": "2026-10"}, headers=admin)).json()
        assert [(s["payee_id"], s["total_fen"], s["entry_count"]) for s in october] == [("first_1v1", 5_000, 1)]
        clock.now = datetime(2026, 11, 30, 17, tzinfo=UTC)
        november = (await http.post("/v1/periods/2026-11/close", headers=admin)).json()["statements"]
        assert [(s["payee_id"], s["total_fen"]) for s in november] == [("first_1v1", -1_500)]

        # Every transaction balances; what the buyer's order owes each payee is 70 % of the commission.
        ledger = (await http.get("/v1/ledger", params={"order_id": order_id}, headers=admin)).json()
        per_txn: dict[str, int] = defaultdict(int)
        owed: dict[str, int] = defaultdict(int)
        for entry in ledger:
            per_txn[entry["txn_id"]] += entry["amount_fen"]
            assert entry["plan_id"] == "default" and entry["plan_version"] == 1 and entry["attribution_id"]
            if entry["account"] != "expense:commission":
                owed[entry["payee_id"]] -= entry["amount_fen"]
        assert set(per_txn.values()) == {0}
        assert dict(owed) == {"chatty_1v1": 0, "first_1v1": 3_500}

        # Nothing in the ledger can be edited or deleted, even by the service's own role.
        async with app.state.runtime.engine.connect() as conn:
            for statement in ("UPDATE ledger_entries SET amount_fen = 0", "DELETE FROM statements"):
                with pytest.raises(DBAPIError, match="append-only"):
                    await conn.execute(text(statement))
                await conn.rollback()

        # Payroll and BI see the movements and both statements on commissions.v1.
        def on_topic() -> Any:
            return read_topic(migrated.bootstrap_servers, TopicNames(topic_prefix).name(Topic.COMMISSIONS))

        async def announced() -> list[dict[str, Any]]:
            events = [orjson.loads(value) for _, value, _ in await on_topic()]
            mine = [e for e in events if e["tenant"] == tenant]
            return mine if sum(e["type"] == "siyu.statement.closed" for e in mine) == 2 else []

        events = await eventually(announced)
        movements = [e["data"] for e in events if e["type"] != "siyu.statement.closed"]
        assert all(m["rule"] and m["account"].split(":")[0] in ("held", "payable") for m in movements)
        refund_reversal = next(m for m in movements if m["rule"].startswith("refund:R1;"))
        assert (refund_reversal["account"], refund_reversal["period"]) == ("payable:first_1v1", "2026-11")
        summary = sorted(
            (e["type"], e["data"].get("payee_id"), e["data"].get("amount_fen", e["data"].get("total_fen")))
            for e in events
        )
        assert summary == [
            ("siyu.commission.accrued", "chatty_1v1", 5_000),
            ("siyu.commission.accrued", "first_1v1", 5_000),
            ("siyu.commission.reversed", "chatty_1v1", 5_000),
            ("siyu.commission.reversed", "first_1v1", 1_500),
            ("siyu.statement.closed", "first_1v1", -1_500),
            ("siyu.statement.closed", "first_1v1", 5_000),
        ]


async def _completed(http: httpx.AsyncClient, order_id: str, headers: dict[str, str]) -> bool:
    ledger = (await http.get("/v1/ledger", params={"order_id": order_id}, headers=headers)).json()
    return bool(ledger)  # completion itself posts nothing until the window passes; the order exists


async def _entries(
    http: httpx.AsyncClient, headers: dict[str, str], *, order_id: str, kind: str, payee: str
) -> list[dict[str, Any]]:
    ledger = (await http.get("/v1/ledger", params={"order_id": order_id}, headers=headers)).json()
    return [e for e in ledger if e["kind"] == kind and e["payee_id"] == payee]
