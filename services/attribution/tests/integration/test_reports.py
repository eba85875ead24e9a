"""Reports over real data: channel/source shares, repurchase, super users, funnel, per-payee sales and commission,
KOL source credit flowing through to the partner's commission, and how each order was attributed (KOL and staff,
activity credit only, nobody)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer

from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually, running_service
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import unit_of_work
from siyu_shared.events.catalog import LeadCaptured, OrderPaid, SourceRef, TouchSent
from siyu_shared.events.topics import TopicNames

from .conftest import FakeClock, Upstream

pytestmark = pytest.mark.integration
T0 = datetime(2026, 10, 2, 4, tzinfo=UTC)


async def test_reports_and_kol_source_credit(migrated: Stack, topic_prefix: str, producer: AIOKafkaProducer) -> None:
    tenant = f"t{uuid4().hex[:8]}"
    kol_fan, loyal, stranger = (f"p{uuid4().hex[:8]}" for _ in range(3))
    stranger_order_no = uuid4().hex
    upstream = Upstream(producer, TopicNames(topic_prefix), tenant)
    clock = FakeClock()
    async with running_service("attribution", migrated, topic_prefix=topic_prefix, clock=clock) as (
        app,
        http,
    ):
        async with unit_of_work(app.state.runtime.sessions) as session:
            reader = {"X-API-Key": (await issue_key(session, tenant=tenant, scopes=("read",), name="bi")).plaintext}
            writer = {"X-API-Key": (await issue_key(session, tenant=tenant, scopes=("write",), name="crm")).plaintext}

        source = SourceRef(channel="xiaohongshu", account_kind="kol", partner_id="kol_mia", note_id="n1")
        await upstream.send(
            LeadCaptured(lead_id=uuid4().hex, person_id=kol_fan, kind="private_message", occurred_at=T0, source=source),
            person=kol_fan,
        )
        await upstream.send(
            TouchSent(
                touch_id=uuid4().hex,
                person_id=kol_fan,
                channel="wecom_1v1",
                kind="staff",
                staff_id="s1",
                occurred_at=T0 + timedelta(hours=1),
            ),
            person=kol_fan,
        )

        # Lead and touch first (a lead learned after the order would re-attribute it, dated when it arrived).
        async def lead_reached() -> bool:
            rows = (await http.get("/v1/reports/funnel", params={"period": "2026-10"}, headers=reader)).json()
            return bool(rows[0]["leads"] == 1 and rows[0]["reached"] == 1)

        await eventually(lead_reached)
        orders = [
            (kol_fan, "tmall", 20_000, T0 + timedelta(days=1), source),
            (loyal, "tmall", 10_000, T0 - timedelta(days=20), None),
            *[(loyal, "doudian", 5_000, T0 + timedelta(days=d), None) for d in range(1, 11)],
            (stranger, "doudian", 30_000, T0 + timedelta(days=3), None),
        ]
        for person, channel, amount, paid_at, order_source in orders:
            await upstream.send(
                OrderPaid(
                    order_id=uuid4().hex,
                    order_no=stranger_order_no if person == stranger else uuid4().hex,
                    channel=channel,
                    person_id=person,
                    amount_fen=amount,
                    paid_at=paid_at,
                    source=order_source,
                ),
                person=person,
            )

        async def payees() -> list[dict[str, object]]:
            rows = (await http.get("/v1/reports/payees", params={"period": "2026-10"}, headers=reader)).json()
            return rows if {r["payee_id"] for r in rows} >= {"kol_mia", "s1"} else []

        by_payee = {r["payee_id"]: r for r in await eventually(payees)}
        assert by_payee["kol_mia"]["payee_role"] == "kol"
        assert by_payee["kol_mia"]["attributed_sales_fen"] == 20_000
        assert by_payee["kol_mia"]["commission_fen"] == 2_000  # 10 % for KOLs under the default plan
        assert by_payee["s1"]["commission_fen"] == 1_000  # 5 % for the 1v1 staff who chatted

        async def all_orders() -> list[dict[str, object]]:
            rows = (await http.get("/v1/reports/channels", params={"period": "2026-10"}, headers=reader)).json()
            return rows if sum(r["orders"] for r in rows) == 12 else []

        channels = {(r["channel"], r["source_kind"]): r for r in await eventually(all_orders)}
        assert channels[("doudian", "unknown")]["gmv_fen"] == 80_000
        assert channels[("tmall", "kol")]["gmv_fen"] == 20_000
        assert channels[("doudian", "unknown")]["gmv_share"] == 0.8
        assert channels[("doudian", "unknown")]["user_share"] == pytest.approx(2 / 3, abs=1e-4)

        repurchase = (await http.get("/v1/reports/repurchase", params={"period": "2026-10"}, headers=reader)).json()[0]
        assert (repurchase["buyers"], repurchase["repeat_buyers"]) == (3, 1)
        assert repurchase["repurchase_rate"] == pytest.approx(1 / 3, abs=1e-4)
        # loyal: Sep 12 → Oct 3 (21 days), then nine one-day gaps: mean 3 days.
        assert repurchase["repurchase_cycle_days"] == 3

        supers = (await http.get("/v1/reports/super-users", params={"period": "2026-10"}, headers=reader)).json()[0]
        assert (supers["super_users"], supers["avg_order_value_fen"], supers["avg_orders"]) == (1, 5_000, 10)

        funnel = (await http.get("/v1/reports/funnel", params={"period": "2026-10"}, headers=reader)).json()[0]
        assert (funnel["leads"], funnel["reached"], funnel["first_order"], funnel["repeat_order"]) == (1, 1, 1, 0)

        # kol_fan's order: the KOL's source credit and the staff's touch; the other eleven: nobody.
        outcomes = (await http.get("/v1/reports/attribution", params={"period": "2026-10"}, headers=reader)).json()
        assert [(r["credited_to"], r["orders"], r["gmv_fen"]) for r in outcomes] == [
            ("none", 11, 80_000),
            ("kol+staff_1v1", 1, 20_000),
        ]
        assert [r["order_share"] for r in outcomes] == [
            pytest.approx(11 / 12, abs=1e-4),
            pytest.approx(1 / 12, abs=1e-4),
        ]

        # A group activator claims the stranger's order: activity credit, and still no commission for anyone.
        clock.now = T0 + timedelta(days=4)
        claim = {"order_no": stranger_order_no, "staff_id": "activator", "role": "group_activator", "via": "group"}
        claimed = await http.post("/v1/claims", json=claim, headers=writer)
        assert claimed.status_code == 201 and claimed.json()["reattributed"] is True, claimed.text
        outcomes = (await http.get("/v1/reports/attribution", params={"period": "2026-10"}, headers=reader)).json()
        assert [(r["credited_to"], r["orders"], r["gmv_fen"]) for r in outcomes] == [
            ("none", 10, 50_000),
            ("activity_only", 1, 30_000),
            ("kol+staff_1v1", 1, 20_000),
        ]
        assert [r["order_share"] for r in outcomes] == [
            pytest.approx(10 / 12, abs=1e-4),
            pytest.approx(1 / 12, abs=1e-4),
            pytest.approx(1 / 12, abs=1e-4),
        ]

        as_csv = await http.get("/v1/reports/channels", params={"period": "2026-10", "format": "csv"}, headers=reader)
        assert as_csv.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert {row["channel"] for row in table} == {"tmall", "doudian"}
        assert (await http.get("/v1/reports/channels", params={"period": "2026-13"}, headers=reader)).status_code == 422
