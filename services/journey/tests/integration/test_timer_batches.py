"""Timers fired set-wise (hundreds a transaction, their touches decided and sent in it) end exactly as fired one at
a time, and as when their touches are queued pending and delivered by delivery rounds: same enrolments, same touches
with the same outcomes and reasons, same events, same deliveries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from siyu_journey import delivery, service
from siyu_journey.adapters import repository as repo
from siyu_journey.adapters.senders import ChannelRouter
from siyu_journey.adapters.senders.sandbox import SandboxSender
from siyu_journey.adapters.tables import enrolments, outbox, sandbox_deliveries, touches
from siyu_journey.domain.definition import parse_definition
from siyu_journey.domain.guardrails import GuardrailPolicy
from siyu_journey.settings import JourneySettings
from siyu_journey.workers import deliver_queued, delivery_config
from siyu_shared.db.engine import SessionFactory, create_engine, session_factory, unit_of_work

from .conftest import Harness

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
DAYTIME = T0 + timedelta(hours=1)
QUIET = T0 + timedelta(hours=12, minutes=30)  # 22:30 in Shanghai


def _journey(journey_id: str, wait_s: int, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": journey_id,
        "name": journey_id,
        "trigger": {"event": "contact.added"},
        "steps": [{"id": "wait", "kind": "wait", "seconds": wait_s}, *steps],
        "templates": {"hi": "你好，我是{{ persona }}", "vip": "{{ persona }}: {{ tags|join(',') }}"},
        "persona": "小完子",
        "staff_pool": ["s1", "s2"],
    }


JOURNEYS = [
    # Branches on the person's tags, then 1v1: the first of the day goes out, the second is capped.
    _journey(
        "first",
        60,
        [
            {"id": "is-vip", "kind": "branch", "condition": {"has_tag": "vip"}, "then": "vip", "otherwise": "hi"},
            {"id": "vip", "kind": "send", "template": "vip", "next": "end"},
            {"id": "hi", "kind": "send", "template": "hi"},
            {"id": "end", "kind": "exit", "reason": "done"},
        ],
    ),
    _journey("second", 120, [{"id": "hi", "kind": "send", "template": "hi"}]),
    # SMS needs consent; a coupon ignores quiet hours.
    _journey("sms", 90, [{"id": "hi", "kind": "send", "channel": "sms", "template": "hi"}]),
    _journey("coupon", 30, [{"id": "hi", "kind": "send", "channel": "coupon", "template": "hi"}]),
]
PEOPLE = [
    # person, opted out, consents, tags, owner, WeCom external_userid (p5 is no WeCom friend: 1v1 skipped)
    ("p0", False, [], [], "staff-0", "wm_p0"),
    ("p1", False, ["sms"], ["vip"], "staff-1", "wm_p1"),
    ("p2", True, ["sms"], [], "staff-2", "wm_p2"),
    ("p3", False, ["sms"], [], "staff-3", "wm_p3"),
    ("p4", False, [], ["vip"], "staff-4", "wm_p4"),
    ("p5", False, [], [], None, None),
]


async def _setup(sessions: SessionFactory, tenant: str) -> None:
    async with unit_of_work(sessions) as session:
        for raw in JOURNEYS:
            definition = parse_definition(raw)
            version = await repo.add_version(session, tenant=tenant, definition=definition, now=T0)
            await repo.set_status(
                session, tenant=tenant, journey_id=definition.id, version=version, status="published", now=T0
            )
        await repo.put_policy(
            session, tenant=tenant, value=GuardrailPolicy(daily_cap={"wecom_1v1": 1, "sms": 1}), now=T0
        )
        for person_id, opted_out, consents, tags, owner, external_userid in PEOPLE:
            await repo.ensure_person(session, tenant=tenant, person_id=person_id, now=T0)
            await repo.update_person(
                session,
                tenant=tenant,
                person_id=person_id,
                opted_out=opted_out,
                consents=consents,
                tags=tags,
                owner_staff_id=owner,
                external_userid=external_userid,
            )
        for raw in JOURNEYS:
            for i, (person_id, *_) in enumerate(PEOPLE):
                enrolment_id = f"{tenant}-{raw['id']}-{person_id}"
                await session.execute(
                    text(
                        "INSERT INTO enrolments (enrolment_id, tenant, journey_id, version, person_id, entry_key, "
                        "status, step_id, visits, entered_at, updated_at) "
                        "VALUES (:e, :t, :j, 1, :p, 'once', 'active', 'wait', '{\"wait\": 1}', :t0, :t0)"
                    ),
                    {"e": enrolment_id, "t": tenant, "j": raw["id"], "p": person_id, "t0": T0},
                )
                # Half of each journey's timers are due by day, half at night (quiet hours then).
                due = T0 + timedelta(seconds=raw["steps"][0]["seconds"] + i)
                if i % 2:
                    due += timedelta(hours=12)
                await session.execute(
                    text("INSERT INTO timers (tenant, enrolment_id, step_id, due_at) VALUES (:t, :e, 'wait', :d)"),
                    {"t": tenant, "e": enrolment_id, "d": due},
                )


async def _fire(
    sessions: SessionFactory, settings: JourneySettings, sender: ChannelRouter, *, batch: int, inline: bool = True
) -> None:
    """Fires every timer due by day, then at night; ``inline=False``: the touches are queued pending and go out
    through delivery rounds (the path of touches not sent where they are queued)."""
    for now in (DAYTIME, QUIET):
        queued = deliver_queued(settings, lambda now=now: now, sender) if inline else None  # type: ignore[misc]
        while True:
            async with unit_of_work(sessions) as session:
                if not await service.fire_due_timers(session, now=now, limit=batch, queued=queued):
                    break
        if not inline:
            while await delivery.deliver_round(
                sessions=sessions,
                sender=sender,
                clock=lambda now=now: now,  # type: ignore[misc]
                topics=settings.topics,
                config=delivery_config(settings),
            ):
                pass


async def _state(sessions: SessionFactory, tenant: str) -> dict[str, Any]:
    async with unit_of_work(sessions) as session:
        e = await session.execute(
            select(enrolments.c.journey_id, enrolments.c.person_id, enrolments.c.status, enrolments.c.step_id)
            .where(enrolments.c.tenant == tenant)
            .order_by(enrolments.c.enrolment_id)
        )
        t = await session.execute(
            select(
                touches.c.journey_id,
                touches.c.person_id,
                touches.c.step_id,
                touches.c.channel,
                touches.c.status,
                touches.c.reason,
                touches.c.due_at,
                touches.c.sent_at,
                touches.c.staff_id,
                touches.c.attempts,
            ).where(touches.c.tenant == tenant)
        )
        o = await session.execute(select(outbox.c.payload).where(outbox.c.tenant == tenant))
        d = await session.execute(
            select(
                sandbox_deliveries.c.person_id,
                sandbox_deliveries.c.channel,
                sandbox_deliveries.c.staff_id,
                sandbox_deliveries.c.body,
            ).where(sandbox_deliveries.c.tenant == tenant)
        )
        events = []
        for (payload,) in o:
            body = json.loads(payload)
            data = {k: v for k, v in body["data"].items() if k != "touch_id"}
            events.append((body["type"], json.dumps(data, sort_keys=True, ensure_ascii=False)))
        return {
            "enrolments": [tuple(r) for r in e],
            "touches": sorted(tuple(str(v) for v in r) for r in t),
            "events": sorted(events),
            "deliveries": sorted(tuple(str(v) for v in r) for r in d),
        }


async def test_timers_fired_in_batches_end_as_fired_one_at_a_time(harness: Harness) -> None:
    engine = create_engine(harness.stack.service_dsn("journey"), schema="journey", pool_size=4)
    sessions = session_factory(engine)
    settings = JourneySettings(
        database_url=harness.stack.service_dsn("journey"),
        kafka_bootstrap_servers=harness.stack.bootstrap_servers,
        kafka_topic_prefix=harness.topic_prefix,
    )
    sender = ChannelRouter(SandboxSender(engine))
    batched, single, rounds = f"{harness.tenant}b", f"{harness.tenant}s", f"{harness.tenant}r"
    try:
        await _setup(sessions, batched)
        await _fire(sessions, settings, sender, batch=500)
        await _setup(sessions, single)
        await _fire(sessions, settings, sender, batch=1)
        await _setup(sessions, rounds)
        await _fire(sessions, settings, sender, batch=500, inline=False)

        got, expected = await _state(sessions, batched), await _state(sessions, single)
        assert got == expected
        # Decided where they are queued (inserted decided) or queued pending then claimed by delivery rounds: the
        # same touches, outcomes, events and deliveries.
        assert got == await _state(sessions, rounds)
        reasons = {(j, p, s, r) for j, p, _, _, s, r, *_ in got["touches"]}
        # The cases the comparison covers were all decided somewhere in it.
        assert ("first", "p2", "skipped", "opted_out") in reasons
        assert ("second", "p0", "skipped", "cap_daily") in reasons
        assert ("sms", "p0", "skipped", "no_consent") in reasons
        assert ("sms", "p3", "deferred", "quiet_hours") not in reasons  # deferred touches stay pending
        assert ("sms", "p3", "pending", "quiet_hours") in reasons
        assert ("coupon", "p1", "sent", "None") in reasons
        assert ("first", "p4", "sent", "None") in reasons
        assert len(got["deliveries"]) == sum(1 for _, _, s, _ in reasons if s == "sent")
        assert len(got["events"]) == sum(1 for _, _, s, _ in reasons if s in ("sent", "skipped", "failed"))
    finally:
        await engine.dispose()
