"""The journey service over real Postgres and Kafka, upstream events produced by the test itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from siyu_devstack.testing import eventually
from siyu_shared.events.catalog import ContactAdded, OrderPaid, SourceRef

from .conftest import Harness, person

pytestmark = pytest.mark.integration

GREETING: dict[str, Any] = {
    "id": "greeting",
    "name": "加好友自动欢迎",
    "trigger": {"event": "contact.added"},
    "persona": "小完子",
    "steps": [{"id": "hello", "kind": "send", "channel": "wecom_1v1", "template": "hello"}],
    "templates": {"hello": "你好呀，我是{{ persona }}"},
}


def contact_added(person_id: str, at: datetime, staff: str = "staff-1") -> ContactAdded:
    return ContactAdded(
        person_id=person_id,
        external_userid=f"wm_{person_id}",
        staff_id=staff,
        occurred_at=at,
        source=SourceRef(channel="wecom"),
    )


async def test_add_friend_sends_the_greeting_once_even_on_a_duplicate_trigger(harness: Harness) -> None:
    async with harness.service() as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        await harness.publish_journey(GREETING)
        p = person()
        await harness.emit(contact_added(p, harness.clock.now), subject=p)
        # The same add-friend delivered twice by the platform (a different event id) must not enrol again.
        await harness.emit(contact_added(p, harness.clock.now), subject=p)

        async def sent() -> Any:
            return [s for s in await harness.touch_statuses(p) if s[1] == "sent"]

        await eventually(sent)
        assert await harness.deliveries(p) == 1
        history = await harness.history(p)
        assert len(history["enrolments"]) == 1
        assert history["enrolments"][0]["status"] == "completed"
        assert history["touches"][0]["staff_id"] == "staff-1"
        assert history["touches"][0]["persona"] == "小完子"

        events = await harness.events_of(p)
        assert [(e["type"], e["step_id"], e["journey_id"]) for e in events] == [
            ("siyu.touch.sent", "hello", "greeting")
        ]


async def test_quiet_hours_defer_the_touch_to_the_morning(harness: Harness) -> None:
    harness.clock.now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    async with harness.service() as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        await harness.publish_journey(GREETING)
        p = person()
        await harness.emit(contact_added(p, harness.clock.now), subject=p)

        async def deferred() -> Any:
            return [t for t in (await harness.history(p))["touches"] if t["reason"] == "quiet_hours"]

        touch = (await eventually(deferred))[0]
        assert touch["status"] == "pending"
        assert datetime.fromisoformat(touch["due_at"]) == datetime(2026, 11, 24, 0, 30, tzinfo=UTC)  # 08:30
        assert await harness.deliveries(p) == 0

        harness.clock.now = datetime(2026, 11, 24, 0, 31, tzinfo=UTC)

        async def sent() -> Any:
            return [s for s in await harness.touch_statuses(p) if s[1] == "sent"]

        await eventually(sent)
        assert await harness.deliveries(p) == 1


async def test_caps_skip_and_record_the_reason(harness: Harness) -> None:
    chatty = {
        **GREETING,
        "id": "chatty",
        "steps": [
            {"id": "one", "kind": "send", "template": "hello"},
            {"id": "two", "kind": "send", "template": "hello"},
            {"id": "three", "kind": "send", "template": "hello"},
        ],
    }
    async with harness.service() as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        policy = await http.put("/v1/guardrails", json={"daily_cap": {"wecom_1v1": 2}}, headers=harness.headers)
        assert policy.status_code == 200, policy.text
        await harness.publish_journey(chatty)
        p = person()
        await harness.emit(contact_added(p, harness.clock.now), subject=p)

        async def settled() -> Any:
            statuses = await harness.touch_statuses(p)
            return statuses if len(statuses) == 3 and all(s[1] in ("sent", "skipped") for s in statuses) else None

        statuses = sorted(await eventually(settled))
        assert statuses == [("one", "sent", None), ("three", "skipped", "cap_daily"), ("two", "sent", None)]
        assert await harness.deliveries(p) == 2

        async def skipped_event() -> Any:
            return [e for e in await harness.touch_events() if e["type"] == "siyu.touch.skipped"]

        skipped = await eventually(skipped_event)
        assert [(e["step_id"], e["reason"]) for e in skipped] == [("three", "cap_daily")]


async def test_purchase_exits_the_journey_before_the_waiting_touch(harness: Harness) -> None:
    coupon = {
        **GREETING,
        "id": "coupon",
        "exit_on": ["order.paid"],
        "steps": [
            {"id": "three_days", "kind": "wait", "seconds": 3 * 86400},
            {"id": "offer", "kind": "send", "template": "hello"},
        ],
    }
    async with harness.service() as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        await harness.publish_journey(coupon)
        p = person()
        await harness.emit(contact_added(p, harness.clock.now), subject=p)

        async def waiting() -> Any:
            enrolments = (await harness.history(p))["enrolments"]
            return enrolments if enrolments and enrolments[0]["step_id"] == "three_days" else None

        await eventually(waiting)
        await harness.emit(
            OrderPaid(
                order_id="o1", order_no="T1", channel="tmall", person_id=p, amount_fen=9900, paid_at=harness.clock.now
            ),
            subject=p,
        )

        async def exited() -> Any:
            enrolments = (await harness.history(p))["enrolments"]
            return enrolments if enrolments[0]["status"] == "exited" else None

        enrolment = (await eventually(exited))[0]
        assert enrolment["exit_reason"] == "order.paid"
        harness.clock.advance(days=4)
        # The timer is gone with the exit: nothing is ever queued for the offer step.
        counts = await http.get("/v1/journeys/coupon/counts", headers=harness.headers)
        assert counts.json()["converted"] == 1
        assert await harness.touch_count() == 0
        assert await harness.deliveries(p) == 0
