"""Merged persons, followed by every consumer.

Ingest publishes ``siyu.person.merged`` when an event links two persons, but events naming the merged id may still be
in flight: published before the merge (another topic, another partition), or by a service that had not seen the
merge yet (journey greets a new WeCom friend under the id the contact arrived with, before WeCom's contact detail
joins it to the lead). Each consumer keeps the merges it has seen in ``person_aliases`` (in its own schema, in the
same transaction as the merge's handling) and hands every later event to its handlers under the survivor's id.

A late event and the merge may be handled at the same moment in two transactions (they travel on different
partitions). So both first take a transaction lock on every person they name (merged ids and survivor included),
in one sorted order: the event either sees the merge's alias, or is committed before the merge folds its person.
The locks are scoped to the service's schema, so services never wait for each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_shared.kafka.received import Received

PERSON_MERGED = "siyu.person.merged"

# Chains: whoever pointed at a merged id now points at the new survivor; then the merged ids point there too.
_REPOINT = text(
    "UPDATE person_aliases SET survivor_id = CAST(:survivor AS varchar)"
    " WHERE tenant = CAST(:tenant AS varchar) AND survivor_id = ANY(CAST(:merged AS varchar[]))"
)
_RECORD = text(
    "INSERT INTO person_aliases (tenant, person_id, survivor_id)"
    " SELECT CAST(:tenant AS varchar), m.id, CAST(:survivor AS varchar)"
    " FROM unnest(CAST(:merged AS varchar[])) AS m(id)"
    " ON CONFLICT (tenant, person_id) DO UPDATE SET survivor_id = EXCLUDED.survivor_id"
)
_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/' || s.k, 0))"
    " FROM (SELECT k FROM unnest(CAST(:keys AS text[])) AS u(k) ORDER BY k) AS s"
)
_SURVIVORS = text(
    "SELECT a.tenant, a.person_id, a.survivor_id FROM person_aliases a"
    " JOIN unnest(CAST(:tenants AS varchar[]), CAST(:persons AS varchar[])) AS w(tenant, person_id)"
    " ON a.tenant = w.tenant AND a.person_id = w.person_id"
)


async def record_merge(session: AsyncSession, *, tenant: str, survivor_id: str, merged_ids: Sequence[str]) -> None:
    merged = sorted({m for m in merged_ids if m != survivor_id})
    if not merged:
        return
    params = {"tenant": tenant, "survivor": survivor_id, "merged": merged}
    await session.execute(_REPOINT, params)
    await session.execute(_RECORD, params)


async def survivors(session: AsyncSession, persons: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``(tenant, person_id)`` → survivor, for the ids among ``persons`` that were merged away."""
    if not persons:
        return {}
    tenants, ids = zip(*sorted(persons), strict=True)
    rows = await session.execute(_SURVIVORS, {"tenants": list(tenants), "persons": list(ids)})
    return {(r.tenant, r.person_id): r.survivor_id for r in rows}


def _person_of(received: Received[Any]) -> str | None:
    person = getattr(received.data, "person_id", None)
    return person if isinstance(person, str) else None


async def _record(session: AsyncSession, merge: Received[Any]) -> Received[Any]:
    """Record a merge under its survivor's own survivor: merges travel keyed by their survivor, so S→T may be
    handled before an earlier A→S; then A→S is A→T (and handlers fold A into T, not into S, which is gone)."""
    data = merge.data
    survivor = (await survivors(session, {(merge.tenant, data.survivor_id)})).get(
        (merge.tenant, data.survivor_id), data.survivor_id
    )
    await record_merge(session, tenant=merge.tenant, survivor_id=survivor, merged_ids=data.merged_ids)
    if survivor == data.survivor_id:
        return merge
    merged_ids = [m for m in data.merged_ids if m != survivor]
    envelope = merge.envelope.model_copy(
        update={"subject": survivor, "data": {**merge.envelope.data, "survivor_id": survivor, "merged_ids": merged_ids}}
    )
    return Received(envelope=envelope, data=data.model_copy(update={"survivor_id": survivor, "merged_ids": merged_ids}))


def redirected(received: Received[Any], survivor: str) -> Received[Any]:
    """The same event, naming ``survivor`` instead of the merged id (payload and subject)."""
    data = received.data.model_copy(update={"person_id": survivor})
    envelope = received.envelope.model_copy(
        update={"subject": survivor, "data": {**received.envelope.data, "person_id": survivor}}
    )
    return Received(envelope=envelope, data=data)


def _persons_named(events: list[Received[Any]]) -> set[str]:
    keys: set[str] = set()
    for received in events:
        if received.envelope.type == PERSON_MERGED:
            data = received.data
            keys.update(f"{received.tenant}/{p}" for p in (data.survivor_id, *data.merged_ids))
        elif (person := _person_of(received)) is not None:
            keys.add(f"{received.tenant}/{person}")
    return keys


async def follow_merges(session: AsyncSession, events: list[Received[Any]]) -> list[Received[Any]]:
    """Lock the persons ``events`` name, record the merges among them, then return the events with merged ids
    replaced by their survivors."""
    keys = _persons_named(events)
    if keys:
        await session.execute(_LOCK, {"keys": sorted(keys)})
    if any(r.envelope.type == PERSON_MERGED for r in events):
        events = [await _record(session, r) if r.envelope.type == PERSON_MERGED else r for r in events]
    wanted = {
        (r.tenant, person) for r in events if r.envelope.type != PERSON_MERGED and (person := _person_of(r)) is not None
    }
    found = await survivors(session, wanted)
    if not found:
        return events
    out = []
    for received in events:
        person = _person_of(received)
        survivor = found.get((received.tenant, person)) if person is not None else None
        out.append(
            received if survivor is None or received.envelope.type == PERSON_MERGED else redirected(received, survivor)
        )
    return out
