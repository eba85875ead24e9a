"""Durable time: waits are rows that survive restarts, fire once with any number of workers, in due order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from siyu_devstack.testing import eventually
from siyu_journey import service
from siyu_journey.adapters import progress
from siyu_journey.adapters import repository as repo
from siyu_journey.adapters.senders import ChannelRouter, Outcome, Outgoing
from siyu_journey.adapters.senders.sandbox import SandboxSender
from siyu_journey.adapters.tables import timers
from siyu_journey.domain.definition import JourneyDefinition, parse_definition
from siyu_journey.domain.machine import Enrolment, start
from siyu_shared.db.engine import SessionFactory, create_engine, session_factory, unit_of_work
from siyu_shared.service import Runtime

from .conftest import Harness, person
from .test_journeys import GREETING, contact_added

pytestmark = pytest.mark.integration

AFTER_AN_HOUR: dict[str, Any] = {
    **GREETING,
    "id": "later",
    "steps": [
        {"id": "hour", "kind": "wait", "seconds": 3600},
        {"id": "hello", "kind": "send", "template": "hello"},
    ],
}


async def _timers_of(harness: Harness) -> int:
    assert harness.app is not None
    async with unit_of_work(harness.app.state.runtime.sessions) as session:
        return int(await session.scalar(select(func.count()).where(timers.c.tenant == harness.tenant)) or 0)


async def test_a_wait_survives_a_worker_restart_and_fires_once(harness: Harness) -> None:
    p = person()
    async with harness.service() as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        await harness.publish_journey(AFTER_AN_HOUR)
        await harness.emit(contact_added(p, harness.clock.now), subject=p)

        async def parked() -> Any:
            return await _timers_of(harness) == 1

        await eventually(parked)
    # The worker is gone; time passes while nobody runs.
    harness.clock.advance(hours=2)
    async with harness.service() as (app, http):
        harness.bind(app, http)

        async def sent() -> Any:
            return [s for s in await harness.touch_statuses(p) if s[1] == "sent"]

        await eventually(sent)
        assert await _timers_of(harness) == 0
        assert await harness.deliveries(p) == 1
        events = await harness.events_of(p)
        assert [e["type"] for e in events] == ["siyu.touch.sent"]


async def test_two_workers_fire_every_timer_exactly_once(harness: Harness) -> None:
    people = [person() for _ in range(40)]
    async with harness.service() as (app, http), harness.service() as (_, _http2):
        harness.bind(app, http)
        await harness.issue_key()
        await harness.publish_journey(AFTER_AN_HOUR)
        for p in people:
            await harness.emit(contact_added(p, harness.clock.now), subject=p)

        async def all_parked() -> Any:
            return await _timers_of(harness) == len(people)

        await eventually(all_parked)
        harness.clock.advance(hours=1, seconds=1)

        async def all_sent() -> Any:
            return await harness.touch_count() == len(people) and await _timers_of(harness) == 0

        await eventually(all_sent)

        async def delivered() -> Any:
            return sum([await harness.deliveries(p) for p in people]) == len(people)

        await eventually(delivered)

        async def all_published() -> Any:
            sent = [e for e in await harness.touch_events() if e["type"] == "siyu.touch.sent"]
            return sent if len(sent) >= len(people) else None

        sent = await eventually(all_published)
        assert sorted(e["person_id"] for e in sent) == sorted(people)


async def _parked(
    sessions: SessionFactory, tenant: str, definition: JourneyDefinition, base: datetime, due: list[tuple[int, str]]
) -> None:
    """The journey published at ``base`` and, per (minutes, person), an enrolment parked on its first wait with a
    timer due that many minutes after ``base``."""
    async with unit_of_work(sessions) as session:
        await repo.add_version(session, tenant=tenant, definition=definition, now=base)
        for minutes, p in due:
            enrolment = Enrolment(f"{tenant}-{p}", definition.id, 1, p, base)
            transition = start(definition, enrolment, repo.person_view(p, None), now=base)
            await progress.insert_enrolment(session, tenant=tenant, enrolment=transition.enrolment, entry_key=p)
            await progress.set_timers(
                session,
                rows=[
                    {
                        "tenant": tenant,
                        "enrolment_id": enrolment.enrolment_id,
                        "step_id": "hour",
                        "due_at": base + timedelta(minutes=minutes),
                    }
                ],
            )


async def test_a_backlog_is_worked_off_in_due_order(harness: Harness) -> None:
    """Timers far in the past (as after a long outage or a clock jump) fire earliest-due first."""
    engine = create_engine(harness.stack.service_dsn("journey"), schema="journey", pool_size=2)
    sessions = session_factory(engine)
    definition = parse_definition({**AFTER_AN_HOUR, "id": "backlog"})
    base = datetime(2001, 1, 1, tzinfo=UTC)
    try:
        await _parked(sessions, harness.tenant, definition, base, [(30, "late"), (10, "early"), (20, "middle")])
        fired: list[str] = []
        for _ in range(3):
            async with unit_of_work(sessions) as session:
                assert await service.fire_due_timers(session, now=base + timedelta(days=1), limit=1) == 1
                fired += [
                    p
                    for p in ("early", "middle", "late")
                    if p not in fired and await progress.person_touches(session, tenant=harness.tenant, person_id=p)
                ]
        assert fired == ["early", "middle", "late"]
    finally:
        await engine.dispose()


async def test_a_timer_whose_enrolment_is_held_is_skipped_not_waited_for(harness: Harness) -> None:
    """A handler holding an enrolment (exiting it, say) neither blocks the timer worker nor loses the timer: the
    worker fires the others and that one on a later round."""
    engine = create_engine(harness.stack.service_dsn("journey"), schema="journey", pool_size=3)
    sessions = session_factory(engine)
    definition = parse_definition({**AFTER_AN_HOUR, "id": "held"})
    base = datetime(1999, 1, 1, tzinfo=UTC)
    try:
        await _parked(sessions, harness.tenant, definition, base, [(10, "held"), (20, "free")])

        async def touched(p: str) -> bool:
            async with unit_of_work(sessions) as session:
                return bool(await progress.person_touches(session, tenant=harness.tenant, person_id=p))

        async def waiting() -> int:
            async with unit_of_work(sessions) as session:
                return int(await session.scalar(select(func.count()).where(timers.c.tenant == harness.tenant)) or 0)

        later = base + timedelta(days=1)
        async with unit_of_work(sessions) as holder:
            held = await progress.enrolments_by_id(holder, ids=[f"{harness.tenant}-held"])
            assert held
            async with unit_of_work(sessions) as session:
                fired = await asyncio.wait_for(service.fire_due_timers(session, now=later, limit=2), 10)
            assert fired == 1
            assert await touched("free") and not await touched("held")
            assert await waiting() == 1  # the held one's timer is still there
        async with unit_of_work(sessions) as session:
            assert await service.fire_due_timers(session, now=later, limit=2) == 1
        assert await touched("held")
        assert await waiting() == 0
    finally:
        await engine.dispose()


class CrashAfterSending:
    """Delivers through the sandbox, then dies before the outcome is recorded (the worst moment)."""

    def __init__(self, sandbox: SandboxSender, tenant: str, *, idempotent: bool) -> None:
        self.sandbox = sandbox
        self.tenant = tenant  # other tests' leftover touches in the shared schema go through untouched
        self.idempotent = idempotent
        self.crashes = 1

    async def send(self, touches: Sequence[Outgoing]) -> list[Outcome]:
        outcomes = await self.sandbox.send(touches)
        if self.crashes and any(t.tenant == self.tenant for t in touches):
            self.crashes -= 1
            raise ConnectionResetError("worker died after the channel accepted the touch")
        return outcomes


async def test_a_crash_after_an_idempotent_send_resends_once_and_records_it(harness: Harness) -> None:
    """Channel with an idempotency key: the crash rolls the claim back; the resend is absorbed by the channel."""

    def senders(runtime: Runtime) -> ChannelRouter:
        return ChannelRouter(CrashAfterSending(SandboxSender(runtime.engine), harness.tenant, idempotent=True))

    p = person()
    async with harness.service(senders=senders) as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        await harness.publish_journey(GREETING)
        await harness.emit(contact_added(p, harness.clock.now), subject=p)

        async def sent() -> Any:
            return [s for s in await harness.touch_statuses(p) if s[1] == "sent"]

        await eventually(sent)
        assert await harness.deliveries(p) == 1
        events = await harness.events_of(p)
        assert [e["type"] for e in events] == ["siyu.touch.sent"]


async def test_a_crash_after_a_send_without_idempotency_is_never_repeated(harness: Harness) -> None:
    """Channel without an idempotency key (WeCom): the unknown outcome is recorded, the person not messaged twice."""

    def senders(runtime: Runtime) -> ChannelRouter:
        return ChannelRouter(CrashAfterSending(SandboxSender(runtime.engine), harness.tenant, idempotent=False))

    p = person()
    async with harness.service(senders=senders, sending_lease_s=60) as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        await harness.publish_journey(GREETING)
        await harness.emit(contact_added(p, harness.clock.now), subject=p)

        async def stuck() -> Any:
            return [s for s in await harness.touch_statuses(p) if s[1] == "sending"]

        await eventually(stuck)
        harness.clock.advance(minutes=2)  # past the lease

        async def recorded() -> Any:
            return await harness.touch_statuses(p) == [("hello", "failed", "outcome_unknown")]

        await eventually(recorded, timeout_s=15)
        assert await harness.deliveries(p) == 1
        events = await harness.events_of(p)
        assert [(e["type"], e["reason"]) for e in events] == [("siyu.touch.failed", "outcome_unknown")]


async def test_an_opt_out_is_honoured_for_touches_already_waiting(harness: Harness) -> None:
    from siyu_shared.events.catalog import TagChange, TagsChanged

    p = person()
    async with harness.service() as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        await harness.publish_journey(AFTER_AN_HOUR)
        await harness.emit(contact_added(p, harness.clock.now), subject=p)

        async def parked() -> Any:
            return await _timers_of(harness) == 1

        await eventually(parked)
        await harness.emit(
            TagsChanged(
                person_id=p,
                added=[TagChange(tag="opted_out", rule_id="r-optout", rule_version=1)],
                tags=["opted_out"],
                evaluated_at=harness.clock.now,
            ),
            subject=p,
        )

        async def seen() -> Any:
            # The tag reached the journey's view of the person (the touch itself is not queued yet).
            async with unit_of_work(app.state.runtime.sessions) as session:
                row = await repo.person_row(session, tenant=harness.tenant, person_id=p)
                return row is not None and row.opted_out

        await eventually(seen)
        harness.clock.advance(hours=2)

        async def skipped() -> Any:
            return await harness.touch_statuses(p) == [("hello", "skipped", "opted_out")]

        await eventually(skipped)
        assert await harness.deliveries(p) == 0
