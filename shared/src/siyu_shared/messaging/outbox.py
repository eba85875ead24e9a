"""Transactional outbox: events are written in the caller's transaction, published later by the relay.

No event without the state that implies it, no state without its event: both commit or neither does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import spec_of
from siyu_shared.events.topics import TopicNames
from siyu_shared.messaging.tables import outbox_table

_INSERT = pg_insert(outbox_table).on_conflict_do_nothing(index_elements=["event_id"])


async def add_to_outbox(
    session: AsyncSession, events: CloudEvent | Iterable[CloudEvent], *, topics: TopicNames
) -> None:
    """Queue events for publishing in the session's current transaction.

    An event whose id is already in the outbox is ignored, so re-running the same unit of work with the same
    deterministic event ids cannot queue a second copy.
    """
    batch = [events] if isinstance(events, CloudEvent) else list(events)
    if not batch:
        return
    rows = [
        {
            "event_id": event.id,
            "topic": topics.name(spec_of(event.type).topic),
            "key": event.subject,
            "event_type": event.type,
            "tenant": event.tenant,
            "payload": event.to_json(),
            "headers": {"ce_type": event.type, "ce_tenant": event.tenant},
        }
        for event in batch
    ]
    # One cached statement executed over the rows (SQLAlchemy batches them as insertmanyvalues), instead of a
    # multi-row VALUES statement compiled anew for every batch size.
    await session.execute(_INSERT, rows)


@dataclass(frozen=True, slots=True)
class SerializedEvent:
    """An event its producer serialized itself: ``payload`` is the envelope's JSON, as ``CloudEvent.to_json``
    gives it (a producer queueing hundreds at a time may build it straight to bytes, held to the model's bytes by
    its own tests). ``ref``: the producer's reference to what implied the event (a row id), for ``only`` in
    ``serialized_insert_sql``."""

    event_id: str
    event_type: str
    tenant: str
    key: str | None
    payload: bytes
    ref: str | None = None


def serialized_insert_sql(*, only: str | None = None) -> str:
    """The outbox INSERT of ``serialized_params`` rows: one constant statement over arrays, whatever the batch
    size (prepared once per connection), writing what ``add_to_outbox`` writes; an id already queued is ignored.

    For a producer that composes it into a statement of its own (e.g. a CTE beside the state change that implies
    the events: one round trip for both). ``only``: an SQL condition on each row's ``v.ref`` choosing the rows
    queued, e.g. ``v.ref IN (SELECT id FROM inserted)`` for the events of rows a CTE of the same statement did
    insert."""
    where = f"WHERE {only}\n    " if only else ""
    return f"""
    INSERT INTO outbox (event_id, topic, key, event_type, tenant, payload, headers)
    SELECT v.event_id, v.topic, v.key, v.event_type, v.tenant, v.payload,
           jsonb_build_object('ce_type', v.event_type, 'ce_tenant', v.tenant)
    FROM unnest(CAST(:outbox_ids AS text[]), CAST(:outbox_topics AS text[]), CAST(:outbox_keys AS text[]),
                CAST(:outbox_types AS text[]), CAST(:outbox_tenants AS text[]), CAST(:outbox_payloads AS bytea[]),
                CAST(:outbox_refs AS text[]))
         AS v(event_id, topic, key, event_type, tenant, payload, ref)
    {where}ON CONFLICT (event_id) DO NOTHING
    """


def serialized_params(events: Sequence[SerializedEvent], *, topics: TopicNames) -> dict[str, Any]:
    """The parameters of ``serialized_insert_sql`` (each event's topic from its type, as ``add_to_outbox``)."""
    topic_of = {kind: topics.name(spec_of(kind).topic) for kind in {e.event_type for e in events}}
    return {
        "outbox_ids": [e.event_id for e in events],
        "outbox_topics": [topic_of[e.event_type] for e in events],
        "outbox_keys": [e.key for e in events],
        "outbox_types": [e.event_type for e in events],
        "outbox_tenants": [e.tenant for e in events],
        "outbox_payloads": [e.payload for e in events],
        "outbox_refs": [e.ref for e in events],
    }


_INSERT_SERIALIZED = text(serialized_insert_sql())


async def add_serialized_to_outbox(
    session: AsyncSession, events: Sequence[SerializedEvent], *, topics: TopicNames
) -> None:
    """``add_to_outbox`` for events already serialized, in one constant statement."""
    if events:
        await session.execute(_INSERT_SERIALIZED, serialized_params(events, topics=topics))
