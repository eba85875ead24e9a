"""Touches sent where they are queued (``delivery.deliver_now``, no savepoint): a send that fails leaves them pending
for the delivery loop while the rest of the transaction commits; a touch id already there keeps its row and gets no
event of the inline decision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from siyu_journey import delivery, service
from siyu_journey.adapters import progress
from siyu_journey.adapters import repository as repo
from siyu_journey.adapters.senders import ChannelRouter, Outcome, Outgoing
from siyu_journey.adapters.senders.sandbox import SandboxSender
from siyu_journey.adapters.tables import enrolments, outbox, sandbox_deliveries, touches
from siyu_journey.domain.definition import parse_definition
from siyu_journey.settings import JourneySettings
from siyu_journey.workers import deliver_queued, delivery_config
from siyu_shared.db.engine import SessionFactory, create_engine, session_factory, unit_of_work

from .conftest import Harness

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
GREETING = {
    "id": "greeting",
    "name": "greeting",
    "trigger": {"event": "contact.added"},
    "steps": [{"id": "wait", "kind": "wait", "seconds": 60}, {"id": "hello", "kind": "send", "template": "hi"}],
    "templates": {"hi": "你好"},
    "persona": "小完子",
}


class BrokenChannel:
    """Deduplicates on the touch id (so it is called inline) but fails every call."""

    idempotent = True

    async def send(self, touches: Sequence[Outgoing]) -> list[Outcome]:
        raise RuntimeError("channel down")


def _settings(harness: Harness) -> JourneySettings:
    return JourneySettings(
        database_url=harness.stack.service_dsn("journey"),
        kafka_bootstrap_servers=harness.stack.bootstrap_servers,
        kafka_topic_prefix=harness.topic_prefix,
    )


async def _waiting(sessions: SessionFactory, tenant: str, people: list[str]) -> None:
    """``people`` enrolled in the greeting, their wait due a second before ``NOW``."""
    async with unit_of_work(sessions) as session:
        definition = parse_definition(GREETING)
        version = await repo.add_version(session, tenant=tenant, definition=definition, now=NOW)
        await repo.set_status(
            session, tenant=tenant, journey_id="greeting", version=version, status="published", now=NOW
        )
        for person in people:
            await repo.ensure_person(
                session, tenant=tenant, person_id=person, now=NOW, owner_staff_id="s1", external_userid=f"wm_{person}"
            )
            await session.execute(
                text(
                    "INSERT INTO enrolments (enrolment_id, tenant, journey_id, version, person_id, entry_key, "
                    "status, step_id, visits, entered_at, updated_at) "
                    "VALUES (:e, :t, 'greeting', 1, :p, 'once', 'active', 'wait', '{\"wait\": 1}', :t0, :t0)"
                ),
                {"e": f"{tenant}-{person}", "t": tenant, "p": person, "t0": NOW - timedelta(minutes=1)},
            )
            await session.execute(
                text("INSERT INTO timers (tenant, enrolment_id, step_id, due_at) VALUES (:t, :e, 'wait', :d)"),
                {"t": tenant, "e": f"{tenant}-{person}", "d": NOW - timedelta(seconds=1)},
            )


async def _touches(sessions: SessionFactory, tenant: str) -> dict[str, tuple[str, int]]:
    async with unit_of_work(sessions) as session:
        rows = await session.execute(
            select(touches.c.person_id, touches.c.status, touches.c.attempts).where(touches.c.tenant == tenant)
        )
        return {r.person_id: (r.status, r.attempts) for r in rows}


async def _count(sessions: SessionFactory, table: Any, tenant: str) -> int:
    async with unit_of_work(sessions) as session:
        return int(await session.scalar(select(func.count()).where(table.c.tenant == tenant)) or 0)


async def test_a_failed_inline_send_leaves_the_touches_pending_and_the_firing_commits(harness: Harness) -> None:
    engine = create_engine(harness.stack.service_dsn("journey"), schema="journey", pool_size=4)
    sessions = session_factory(engine)
    settings, tenant = _settings(harness), harness.tenant
    try:
        await _waiting(sessions, tenant, ["p1", "p2"])
        broken = deliver_queued(settings, lambda: NOW, ChannelRouter(BrokenChannel()))
        async with unit_of_work(sessions) as session:
            assert await service.fire_due_timers(session, now=NOW, limit=10, queued=broken) == 2
        # The firing committed (enrolments finished, timers gone), the touches wait pending, nothing was recorded
        # as sent and no event queued.
        async with unit_of_work(sessions) as session:
            statuses = await session.execute(select(enrolments.c.status).where(enrolments.c.tenant == tenant))
            assert {s for (s,) in statuses} == {"completed"}
        assert await _touches(sessions, tenant) == {"p1": ("pending", 0), "p2": ("pending", 0)}
        assert await _count(sessions, outbox, tenant) == 0
        # The delivery loop sends them, once each.
        sandbox = ChannelRouter(SandboxSender(engine))
        config = delivery_config(settings)
        while await delivery.deliver_round(
            sessions=sessions, sender=sandbox, clock=lambda: NOW, topics=settings.topics, config=config
        ):
            pass
        assert await _touches(sessions, tenant) == {"p1": ("sent", 1), "p2": ("sent", 1)}
        assert await _count(sessions, sandbox_deliveries, tenant) == 2
        assert await _count(sessions, outbox, tenant) == 2
    finally:
        await engine.dispose()


async def test_a_touch_already_there_keeps_its_row_and_gets_no_inline_event(harness: Harness) -> None:
    engine = create_engine(harness.stack.service_dsn("journey"), schema="journey", pool_size=4)
    sessions = session_factory(engine)
    settings, tenant = _settings(harness), harness.tenant
    sandbox = ChannelRouter(SandboxSender(engine))
    try:
        await _waiting(sessions, tenant, ["p1", "p2"])
        # What a firing queues for p1 and p2 now, as rows; p1's is in the table already (pending).
        rows: list[dict[str, Any]] = []
        async with unit_of_work(sessions) as session:
            for person in ("p1", "p2"):
                rows.append(
                    {
                        "touch_id": f"{tenant}-{person}-hello",
                        "tenant": tenant,
                        "enrolment_id": f"{tenant}-{person}",
                        "person_id": person,
                        "journey_id": "greeting",
                        "version": 1,
                        "step_id": "hello",
                        "occurrence": 1,
                        "channel": "wecom_1v1",
                        "template": "hi",
                        "campaign_id": None,
                        "priority": 0,
                        "persona": "小完子",
                        "staff_id": None,
                        "status": "pending",
                        "reason": None,
                        "attempts": 0,
                        "due_at": NOW,
                        "attempt_at": None,
                        "sent_at": None,
                        "created_at": NOW,
                    }
                )
            await progress.insert_touches(session, rows=rows[:1])
        async with unit_of_work(sessions) as session:
            inserted, left = await delivery.deliver_now(
                session, rows, now=NOW, sender=sandbox, topics=settings.topics, config=delivery_config(settings)
            )
        assert inserted == {f"{tenant}-p2-hello"}
        assert left
        assert await _touches(sessions, tenant) == {"p1": ("pending", 0), "p2": ("sent", 1)}
        async with unit_of_work(sessions) as session:
            keys = await session.execute(select(outbox.c.key).where(outbox.c.tenant == tenant))
            assert [k for (k,) in keys] == ["p2"]
    finally:
        await engine.dispose()
