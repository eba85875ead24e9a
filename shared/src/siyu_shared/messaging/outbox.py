"""Transactional outbox: events are written in the caller's transaction, published later by the relay.

No event without the state that implies it, no state without its event: both commit or neither does.
"""

from __future__ import annotations

from collections.abc import Iterable

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
