"""touches.v1 events from touch rows, through the outbox (deterministic ids: one event per touch outcome).

A delivery round queues hundreds of these, so they are built straight to their JSON (``TouchOutcome.payload``)
rather than through two pydantic models each; ``touch_event`` is the reference envelope, and a unit test holds the
fast JSON to its bytes. Anything the catalog's models would refuse takes the reference path, so it fails the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_journey.adapters import progress
from siyu_shared.events.catalog.touches import TouchChannel, TouchFailed, TouchSent, TouchSkipped
from siyu_shared.events.envelope import CloudEvent, deterministic_event_id
from siyu_shared.events.registry import envelope, spec_of
from siyu_shared.events.topics import Topic, TopicNames

Outcome = Literal["sent", "failed", "skipped"]
SOURCE = "/siyu/journey"
_TYPES: dict[str, str] = {
    "sent": TouchSent.event_type,
    "failed": TouchFailed.event_type,
    "skipped": TouchSkipped.event_type,
}
_CHANNELS = frozenset(get_args(TouchChannel))


def touch_event(
    touch: Any, outcome: Outcome, *, at: datetime, reason: str | None = None, staff_id: str | None = None
) -> CloudEvent:
    """``touch`` is a touches row; ``staff_id`` the account it went out through when decided at send time."""
    common: dict[str, Any] = {
        "touch_id": touch.touch_id,
        "person_id": touch.person_id,
        "channel": touch.channel,
        "journey_id": touch.journey_id,
        "journey_version": touch.version,
        "step_id": touch.step_id,
        "staff_id": staff_id or touch.staff_id,
        "persona": touch.persona,
        "campaign_id": touch.campaign_id,
        "occurred_at": at,
    }
    data: TouchSent | TouchFailed | TouchSkipped
    if outcome == "sent":
        data = TouchSent(**common)
    elif outcome == "failed":
        data = TouchFailed(**common, reason=reason or "failed")
    else:
        data = TouchSkipped(**common, reason=reason or "skipped")
    return envelope(
        data,
        tenant=touch.tenant,
        subject=touch.person_id,
        source=SOURCE,
        event_id=deterministic_event_id("touch", touch.tenant, touch.touch_id, outcome),
        time=at,
    )


def _plain(touch: Any, at: datetime) -> bool:
    """What the catalog's models accept without a change (else the reference path decides, or raises)."""
    person = touch.person_id
    return (
        touch.channel in _CHANNELS
        and isinstance(person, str)
        and 1 <= len(person) <= 64
        and isinstance(touch.version, int)
        and at.tzinfo is not None
        and at.utcoffset() is not None
        and len(touch.tenant) <= 64
        and len(touch.tenant) >= 1
    )


@dataclass(frozen=True, slots=True)
class TouchOutcome:
    """One touches.v1 event to queue: the outcome of ``touch`` (a touches row) decided ``at``."""

    touch: Any
    outcome: Outcome
    at: datetime
    reason: str | None = None
    staff_id: str | None = None

    @property
    def event_type(self) -> str:
        return _TYPES[self.outcome]

    @property
    def event_id(self) -> str:
        return deterministic_event_id("touch", self.touch.tenant, self.touch.touch_id, self.outcome)

    def payload(self) -> bytes:
        """The envelope's JSON, byte for byte what ``touch_event(...).to_json()`` gives."""
        touch, at = self.touch, self.at
        if not _plain(touch, at):
            return self.reference().to_json()
        data: dict[str, Any] = {
            "touch_id": touch.touch_id,
            "person_id": touch.person_id,
            "channel": touch.channel,
            "kind": "journey",
            "journey_id": touch.journey_id,
            "journey_version": touch.version,
            "step_id": touch.step_id,
            "staff_id": self.staff_id or touch.staff_id,
            "persona": touch.persona,
            "campaign_id": touch.campaign_id,
            "occurred_at": at,
        }
        if self.outcome != "sent":
            data["reason"] = self.reason or self.outcome
        spec = spec_of(self.event_type)
        return orjson.dumps(
            {
                "specversion": "1.0",
                "id": self.event_id,
                "source": SOURCE,
                "type": spec.type_name,
                "time": at.astimezone(UTC),
                "subject": touch.person_id,
                "tenant": touch.tenant,
                "datacontenttype": "application/json",
                "dataschema": spec.schema_uri,
                "data": data,
            },
            option=orjson.OPT_UTC_Z,
        )

    def reference(self) -> CloudEvent:
        return touch_event(self.touch, self.outcome, at=self.at, reason=self.reason, staff_id=self.staff_id)


_QUEUE_SQL = """
    INSERT INTO outbox (event_id, topic, key, event_type, tenant, payload, headers)
    SELECT v.event_id, CAST(:topic AS varchar), v.key, v.event_type, v.tenant, v.payload,
           jsonb_build_object('ce_type', v.event_type, 'ce_tenant', v.tenant)
    FROM unnest(CAST(:event_ids AS text[]), CAST(:event_keys AS text[]), CAST(:event_types AS text[]),
                CAST(:event_tenants AS text[]), CAST(:payloads AS bytea[]))
         AS v(event_id, key, event_type, tenant, payload)
    ON CONFLICT (event_id) DO NOTHING
"""
_QUEUE = text(_QUEUE_SQL)
_UPDATE_AND_QUEUE = text(f"WITH updated AS ({progress.UPDATE_TOUCHES_SQL}) {_QUEUE_SQL}")
_QUEUE_AND_INSERT = text(f"WITH queued AS ({_QUEUE_SQL}) {progress.INSERT_TOUCHES_SQL} RETURNING touch_id")


def _queue_params(events: Sequence[TouchOutcome], topics: TopicNames) -> dict[str, Any]:
    return {
        "topic": topics.name(Topic.TOUCHES),
        "event_ids": [e.event_id for e in events],
        "event_keys": [e.touch.person_id for e in events],
        "event_types": [e.event_type for e in events],
        "event_tenants": [e.touch.tenant for e in events],
        "payloads": [e.payload() for e in events],
    }


async def emit(session: AsyncSession, events: Sequence[TouchOutcome], *, topics: TopicNames) -> None:
    """Queues events in the outbox, in the caller's transaction: one constant statement over arrays (an id already
    queued is ignored, as with ``add_to_outbox``, so a redone unit of work queues no second copy)."""
    if not events:
        return
    await session.execute(_QUEUE, _queue_params(events, topics))


async def record(
    session: AsyncSession, changes: Sequence[dict[str, Any]], events: Sequence[TouchOutcome], *, topics: TopicNames
) -> None:
    """``progress.update_touches`` and ``emit`` in one round trip (one statement: the update in a CTE)."""
    if not events:
        await progress.update_touches(session, changes=changes)
    elif not changes:
        await emit(session, events, topics=topics)
    else:
        await session.execute(_UPDATE_AND_QUEUE, progress.touch_update_params(changes) | _queue_params(events, topics))


async def insert_decided(
    session: AsyncSession, rows: Sequence[dict[str, Any]], events: Sequence[TouchOutcome], *, topics: TopicNames
) -> set[str]:
    """``progress.insert_decided_touches`` and ``emit`` in one round trip (the events queued in a CTE); the ids of
    the touches actually inserted (the caller rolls the events back should one be missing)."""
    if not events:
        return await progress.insert_decided_touches(session, rows=rows)
    result = await session.execute(
        _QUEUE_AND_INSERT, progress.touch_insert_params(rows) | _queue_params(events, topics)
    )
    return set(result.scalars())
