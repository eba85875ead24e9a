"""The batch consumer decides exactly as one event at a time would: runs of distinct persons handled in bulk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from siyu_journey.adapters import repository as repo
from siyu_journey.adapters.tables import enrolments, outbox, people, timers, touches
from siyu_journey.domain.definition import parse_definition
from siyu_journey.handlers import Handlers
from siyu_shared.db.engine import SessionFactory, create_engine, session_factory, unit_of_work
from siyu_shared.events.catalog import ContactAdded, ContactRemoved, GroupJoined, SourceRef
from siyu_shared.events.registry import EventData, envelope
from siyu_shared.kafka.runner import Received

from .conftest import Harness

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

WELCOME: dict[str, Any] = {
    "id": "welcome",
    "name": "welcome",
    "trigger": {"event": "contact.added"},
    "entry": {"mode": "reentry"},
    "exit_on": ["contact.removed"],
    "steps": [
        {"id": "hello", "kind": "send", "template": "hello"},
        {"id": "hour", "kind": "wait", "seconds": 3600},
        {"id": "again", "kind": "send", "template": "hello"},
    ],
    "templates": {"hello": "你好"},
}
IN_GROUP: dict[str, Any] = {
    "id": "in-group",
    "name": "in-group",
    "trigger": {"event": "group.joined"},
    "staff_pool": ["s1", "s2", "s3"],
    "steps": [{"id": "welcome", "kind": "send", "template": "hello"}],
    "templates": {"hello": "欢迎"},
}


def _events(tenant: str) -> list[Received[Any]]:
    def added(p: str) -> EventData:
        return ContactAdded(
            person_id=p,
            external_userid=f"wm_{p}",
            staff_id=f"staff-{p}",
            occurred_at=NOW,
            source=SourceRef(channel="wecom"),
        )

    def removed(p: str) -> EventData:
        return ContactRemoved(
            person_id=p, external_userid=f"wm_{p}", staff_id="x", removed_by="customer", occurred_at=NOW
        )

    def joined(p: str) -> EventData:
        return GroupJoined(person_id=p, chat_id="g", join_scene=1, occurred_at=NOW)

    datas = [
        added("a"),
        added("b"),
        joined("a"),  # a again: a new run
        added("a"),  # re-entry while active: no second enrolment
        removed("b"),  # exits b's welcome, its queued touch is skipped
        added("b"),  # re-entry after the exit: a second enrolment
        joined("c"),  # c is new: created, staff from the pool
        joined("d"),
        removed("d"),
    ]
    out: list[Received[Any]] = []
    for data in datas:
        event = envelope(data, tenant=tenant, subject=data.person_id, source="/test")  # type: ignore[attr-defined]
        out.append(Received(envelope=event, data=data))
    return out


async def _state(sessions: SessionFactory, tenant: str) -> dict[str, Any]:
    async with unit_of_work(sessions) as session:
        e = await session.execute(
            select(
                enrolments.c.journey_id,
                enrolments.c.person_id,
                enrolments.c.status,
                enrolments.c.step_id,
                enrolments.c.exit_reason,
                enrolments.c.visits,
            ).where(enrolments.c.tenant == tenant)
        )
        t = await session.execute(
            select(
                touches.c.journey_id,
                touches.c.person_id,
                touches.c.step_id,
                touches.c.status,
                touches.c.reason,
                touches.c.staff_id,
            ).where(touches.c.tenant == tenant)
        )
        p = await session.execute(
            select(people.c.person_id, people.c.owner_staff_id, people.c.external_userid).where(
                people.c.tenant == tenant
            )
        )
        w = await session.execute(select(timers.c.step_id).where(timers.c.tenant == tenant))
        o = await session.execute(select(outbox.c.event_type).where(outbox.c.tenant == tenant))
        return {
            "enrolments": sorted(tuple(str(v) for v in r) for r in e),
            "touches": sorted(tuple(str(v) for v in r) for r in t),
            "people": sorted(tuple(str(v) for v in r) for r in p),
            "timers": sorted(r.step_id for r in w),
            "events": sorted(r.event_type for r in o),
        }


async def test_a_batch_ends_as_one_event_at_a_time_would(harness: Harness) -> None:
    engine = create_engine(harness.stack.service_dsn("journey"), schema="journey", pool_size=2)
    sessions = session_factory(engine)
    clock: Callable[[], datetime] = lambda: NOW  # noqa: E731
    handlers = Handlers(clock=clock, topics=harness.topics)
    batched, single = f"{harness.tenant}b", f"{harness.tenant}s"
    try:
        for tenant in (batched, single):
            async with unit_of_work(sessions) as session:
                for raw in (WELCOME, IN_GROUP):
                    definition = parse_definition(raw)
                    version = await repo.add_version(session, tenant=tenant, definition=definition, now=NOW)
                    await repo.set_status(
                        session, tenant=tenant, journey_id=definition.id, version=version, status="published", now=NOW
                    )
        async with unit_of_work(sessions) as session:
            await handlers.on_batch(_events(batched), session)
        for event in _events(single):  # one event a transaction: what the runner falls back to after a failure
            async with unit_of_work(sessions) as session:
                await handlers.on_batch([event], session)

        got, expected = await _state(sessions, batched), await _state(sessions, single)
        assert got == expected
        statuses = sorted((r[0], r[1], r[2]) for r in got["enrolments"])
        assert statuses == [
            ("in-group", "a", "completed"),
            ("in-group", "c", "completed"),
            ("in-group", "d", "completed"),
            ("welcome", "a", "active"),
            ("welcome", "b", "active"),
            ("welcome", "b", "exited"),
        ]
        assert [p for p, *_ in got["people"]] == ["a", "b", "c", "d"]
        assert ("welcome", "b", "hello", "skipped", "exited:contact.removed", "staff-b") in got["touches"]
        assert got["events"] == ["siyu.touch.skipped"]
    finally:
        await engine.dispose()
