"""One-to-one WeCom messages reach only WeCom friends: a lead who never added the brand is skipped (at any hour),
a merge carries the friendship to the survivor, and a friendship the owner's staff account lost ends it."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from siyu_devstack.testing import eventually
from siyu_journey.adapters import repository as repo
from siyu_shared.db.engine import unit_of_work
from siyu_shared.events.catalog import ContactRemoved, LeadCaptured, OrderPaid, PersonMerged, SourceRef

from .conftest import Harness, person
from .test_journeys import contact_added

pytestmark = pytest.mark.integration

AFTER_PAYMENT: dict[str, Any] = {
    "id": "thanks",
    "name": "付款后感谢",
    "trigger": {"event": "order.paid"},
    "entry": {"mode": "reentry"},
    "persona": "小完子",
    "steps": [{"id": "thanks", "kind": "send", "channel": "wecom_1v1", "template": "thanks"}],
    "templates": {"thanks": "谢谢支持～"},
}


def _paid(person_id: str, harness: Harness) -> OrderPaid:
    order = uuid4().hex[:12]
    return OrderPaid(
        order_id=order, order_no=order, channel="tmall", person_id=person_id, amount_fen=9900, paid_at=harness.clock.now
    )


async def _external_userid(harness: Harness, person_id: str) -> str | None:
    assert harness.app is not None
    async with unit_of_work(harness.app.state.runtime.sessions) as session:
        row = await repo.person_row(session, tenant=harness.tenant, person_id=person_id)
    return row.external_userid if row is not None else None


async def _outcomes(harness: Harness, person_id: str, count: int) -> list[tuple[str, str | None]]:
    async def settled() -> Any:
        statuses = await harness.touch_statuses(person_id)
        done = [(s[1], s[2]) for s in statuses if s[1] in ("sent", "skipped", "failed")]
        return done if len(done) == count else None

    return sorted(await eventually(settled), key=str)


async def test_only_wecom_friends_get_one_to_one_messages(harness: Harness) -> None:
    async with harness.service() as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        await harness.publish_journey(AFTER_PAYMENT)
        lead, friend = person(), person()
        source = SourceRef(channel="xiaohongshu", account_kind="kol")
        captured = LeadCaptured(
            lead_id=uuid4().hex, person_id=lead, kind="form", occurred_at=harness.clock.now, source=source
        )
        await harness.emit(captured, subject=lead)
        await harness.emit(_paid(lead, harness), subject=lead)
        # Known only as a lead: no WeCom friendship to send through, so skipped (not retried, not sent elsewhere).
        assert await _outcomes(harness, lead, 1) == [("skipped", "no_wecom_contact")]
        skipped = [e for e in await harness.events_of(lead) if e["type"] == "siyu.touch.skipped"]
        assert [e["reason"] for e in skipped] == ["no_wecom_contact"]

        # The same human adds the staff on WeCom as another person; identity merges them into the lead.
        await harness.emit(contact_added(friend, harness.clock.now, staff="staff-1"), subject=friend)
        await eventually(lambda: _external_userid(harness, friend))  # another partition: wait until handled
        await harness.emit(
            PersonMerged(survivor_id=lead, merged_ids=[friend], reason="phone", merged_at=harness.clock.now),
            subject=lead,
        )
        await harness.emit(_paid(lead, harness), subject=lead)
        assert await _outcomes(harness, lead, 2) == [("sent", None), ("skipped", "no_wecom_contact")]
        assert await _external_userid(harness, lead) == f"wm_{friend}"
        assert await harness.deliveries(lead) == 1

        # Another staff account losing the customer leaves the owner's friendship; the owner losing it ends it.
        for staff in ("staff-2", "staff-1"):
            removed = ContactRemoved(
                person_id=lead,
                external_userid=f"wm_{friend}",
                staff_id=staff,
                removed_by="customer",
                occurred_at=harness.clock.now,
            )
            await harness.emit(removed, subject=lead)
            await harness.emit(_paid(lead, harness), subject=lead)
        outcomes = await _outcomes(harness, lead, 4)
        assert await _external_userid(harness, lead) is None
        assert outcomes == [
            ("sent", None),
            ("sent", None),
            ("skipped", "no_wecom_contact"),
            ("skipped", "no_wecom_contact"),
        ]
        assert await harness.deliveries(lead) == 2


def _removed(person_id: str, staff: str, harness: Harness) -> ContactRemoved:
    return ContactRemoved(
        person_id=person_id,
        external_userid=f"wm_{person_id}",
        staff_id=staff,
        removed_by="customer",
        occurred_at=harness.clock.now,
    )


async def test_the_friendship_changes_as_a_pair_owner_and_external_userid(harness: Harness) -> None:
    async with harness.service() as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        await harness.publish_journey(AFTER_PAYMENT)
        customer = person()
        await harness.emit(contact_added(customer, harness.clock.now, staff="staff-1"), subject=customer)
        await harness.emit(_paid(customer, harness), subject=customer)
        assert await _outcomes(harness, customer, 1) == [("sent", None)]

        # The owner loses the customer, another staff account adds them again: the friendship is staff-2's now,
        # so the next 1v1 goes out from staff-2 (from staff-1 WeCom would list the customer as unreachable).
        await harness.emit(_removed(customer, "staff-1", harness), subject=customer)
        await harness.emit(contact_added(customer, harness.clock.now, staff="staff-2"), subject=customer)
        await harness.emit(_paid(customer, harness), subject=customer)
        assert await _outcomes(harness, customer, 2) == [("sent", None), ("sent", None)]
        touches = (await harness.history(customer))["touches"]
        assert sorted(t["staff_id"] for t in touches) == ["staff-1", "staff-2"]

        # staff-2 owns it while it lasts: staff-2 losing the customer ends it.
        await harness.emit(_removed(customer, "staff-2", harness), subject=customer)
        await harness.emit(_paid(customer, harness), subject=customer)
        assert await _outcomes(harness, customer, 3) == [
            ("sent", None),
            ("sent", None),
            ("skipped", "no_wecom_contact"),
        ]
        assert await _external_userid(harness, customer) is None
        assert await harness.deliveries(customer) == 2
