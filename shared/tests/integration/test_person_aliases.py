"""Consumers follow merges: events still naming a merged id reach handlers under the survivor, chains included."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from siyu_devstack.testing import Scratch
from siyu_shared.db.engine import unit_of_work
from siyu_shared.events.catalog import GroupJoined, PersonMerged
from siyu_shared.events.registry import envelope, parse_data
from siyu_shared.kafka.received import Received
from siyu_shared.messaging.aliases import follow_merges

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def received(data: GroupJoined | PersonMerged, *, tenant: str = "glowlab", subject: str) -> Received[object]:
    event = envelope(data, tenant=tenant, subject=subject, source="/test")
    return Received(envelope=event, data=parse_data(event))


def joined(person: str, tenant: str = "glowlab") -> Received[object]:
    data = GroupJoined(person_id=person, chat_id="wr", join_scene=0, occurred_at=NOW)
    return received(data, tenant=tenant, subject=person)


def merged(survivor: str, *ids: str) -> Received[object]:
    data = PersonMerged(survivor_id=survivor, merged_ids=list(ids), reason="phone", merged_at=NOW)
    return received(data, subject=survivor)


def people(events: list[Received[object]]) -> list[tuple[str | None, str | None]]:
    return [(getattr(e.data, "person_id", None), e.envelope.subject) for e in events]


async def test_late_events_of_merged_ids_reach_the_survivor_and_chains_resolve(scratch: Scratch) -> None:
    async with unit_of_work(scratch.sessions) as session:
        # A merge and a late event for the merged id in the same batch: the event follows the merge.
        out = await follow_merges(session, [merged("A", "B"), joined("B"), joined("C")])
        assert people(out[1:]) == [("A", "A"), ("C", "C")]
        assert out[1].envelope.data["person_id"] == "A" and out[1].envelope.id == out[1].envelope.id
    async with unit_of_work(scratch.sessions) as session:
        # Later: A itself is merged into Z; whatever pointed at A now points at Z.
        await follow_merges(session, [merged("Z", "A", "Z")])
        out = await follow_merges(session, [joined("B"), joined("A"), joined("Z"), joined("B", tenant="other")])
    assert people(out) == [("Z", "Z"), ("Z", "Z"), ("Z", "Z"), ("B", "B")]  # another tenant's B is another person


async def test_events_without_merges_pass_through_untouched(scratch: Scratch) -> None:
    events = [joined("P1"), joined("P2")]
    async with unit_of_work(scratch.sessions) as session:
        assert await follow_merges(session, events) is events


async def test_a_merge_waits_for_a_late_event_of_its_merged_id_in_flight(scratch: Scratch) -> None:
    async with unit_of_work(scratch.sessions) as late:
        (event,) = await follow_merges(late, [joined("X")])  # handled under X: no merge seen yet
        assert event.data.person_id == "X"  # type: ignore[attr-defined]

        async def merge() -> None:
            async with unit_of_work(scratch.sessions) as session:
                await follow_merges(session, [merged("P", "X")])

        merging = asyncio.create_task(merge())
        await asyncio.sleep(0.5)
        assert not merging.done()  # the merge waits until the late event's transaction is over
    await asyncio.wait_for(merging, 10)
    async with unit_of_work(scratch.sessions) as session:
        (event,) = await follow_merges(session, [joined("X")])
    assert event.data.person_id == "P"  # type: ignore[attr-defined]


async def test_a_merge_handled_after_its_survivors_own_merge_goes_to_the_final_survivor(scratch: Scratch) -> None:
    """Ingest merged A into S, then S into T; the two merges travel keyed by their survivors (other partitions),
    so S→T may be handled first. A→S is then A→T: handlers fold A into T and A's late events reach T."""
    async with unit_of_work(scratch.sessions) as session:
        await follow_merges(session, [merged("T", "S")])
    async with unit_of_work(scratch.sessions) as session:
        (merge,) = await follow_merges(session, [merged("S", "A")])
        out = await follow_merges(session, [joined("A"), joined("S")])
    assert (merge.data.survivor_id, merge.data.merged_ids, merge.envelope.subject) == ("T", ["A"], "T")  # type: ignore[attr-defined]
    assert merge.envelope.data["survivor_id"] == "T"
    assert people(out) == [("T", "T"), ("T", "T")]
