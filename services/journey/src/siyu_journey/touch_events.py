"""touches.v1 events from touch rows, through the outbox (deterministic ids: one event per touch outcome).

A delivery round queues hundreds of these, so they are built straight to their JSON (``TouchOutcome.payload``)
rather than through two pydantic models each; ``touch_event`` is the reference envelope, and a unit test holds the
fast JSON to its bytes. The catalog's models validate the fast JSON's values strictly (their validators, without
building them): anything they would coerce or refuse takes the reference path, so it comes out the same or fails
the same. The outbox rows are written by the shared outbox's statement (``serialized_insert_sql``), composed here
with the touch writes that imply them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any, Literal

import orjson
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_journey.adapters import progress
from siyu_shared.events.catalog.touches import TouchFailed, TouchSent, TouchSkipped
from siyu_shared.events.envelope import CloudEvent, deterministic_event_id
from siyu_shared.events.registry import EventSpec, envelope, spec_of
from siyu_shared.events.topics import TopicNames
from siyu_shared.messaging.outbox import (
    SerializedEvent,
    add_serialized_to_outbox,
    serialized_insert_sql,
    serialized_params,
)

Outcome = Literal["sent", "failed", "skipped"]
SOURCE = "/siyu/journey"
_TYPES: dict[str, str] = {
    "sent": TouchSent.event_type,
    "failed": TouchFailed.event_type,
    "skipped": TouchSkipped.event_type,
}
_VALIDATORS = {
    "sent": TouchSent.__pydantic_validator__,
    "failed": TouchFailed.__pydantic_validator__,
    "skipped": TouchSkipped.__pydantic_validator__,
}
_ENVELOPE = CloudEvent.__pydantic_validator__


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


@cache
def _spec(outcome: Outcome) -> EventSpec:
    return spec_of(_TYPES[outcome])


@lru_cache(maxsize=1024)
def _envelope_accepts(tenant: Any, outcome: Outcome) -> bool:
    """Whether the envelope model accepts a touch event of ``tenant`` as it is. Its other fields are the same for
    every touch event or valid whenever the data is (a uuid, the data's aware time, the person id), so the
    envelope's validator runs once per tenant."""
    spec = _spec(outcome)
    try:
        _ENVELOPE.validate_python(
            {
                "id": deterministic_event_id("touch", "tenant", "touch", outcome),
                "source": SOURCE,
                "type": spec.type_name,
                "time": datetime.now(UTC),
                "subject": "person",
                "tenant": tenant,
                "dataschema": spec.schema_uri,
                "data": {},
            },
            strict=True,
        )
    except ValidationError:
        return False
    return True


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

    def serialized(self) -> SerializedEvent:
        """The event for the outbox (its id computed once), referring to its touch."""
        event_id = self.event_id
        return SerializedEvent(
            event_id,
            self.event_type,
            self.touch.tenant,
            self.touch.person_id,
            self.payload(event_id),
            self.touch.touch_id,
        )

    def payload(self, event_id: str | None = None) -> bytes:
        """The envelope's JSON, byte for byte what ``touch_event(...).to_json()`` gives. The catalog's models
        validate it (strictly: anything they would coerce, or refuse, takes the reference path, so it comes out
        coerced or fails the same), without building them."""
        touch, at = self.touch, self.at
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
        spec = _spec(self.outcome)
        document = {
            "specversion": "1.0",
            "id": event_id or self.event_id,
            "source": SOURCE,
            "type": spec.type_name,
            "time": at,
            "subject": touch.person_id,
            "tenant": touch.tenant,
            "datacontenttype": "application/json",
            "dataschema": spec.schema_uri,
            "data": data,
        }
        try:
            _VALIDATORS[self.outcome].validate_python(data, strict=True)
        except ValidationError:
            return self.reference().to_json()
        if not _envelope_accepts(touch.tenant, self.outcome):
            return self.reference().to_json()
        document["time"] = at.astimezone(UTC)
        return orjson.dumps(document, option=orjson.OPT_UTC_Z)

    def reference(self) -> CloudEvent:
        return touch_event(self.touch, self.outcome, at=self.at, reason=self.reason, staff_id=self.staff_id)


_UPDATE_AND_QUEUE = text(f"WITH updated AS ({progress.UPDATE_TOUCHES_SQL}) {serialized_insert_sql()}")
_INSERT_AND_QUEUE = text(
    f"WITH inserted AS ({progress.INSERT_TOUCHES_SQL} RETURNING touch_id),"
    f" queued AS ({serialized_insert_sql(only='v.ref IN (SELECT touch_id FROM inserted)')})"
    " SELECT touch_id FROM inserted"
)


def _queue_params(events: Sequence[TouchOutcome], topics: TopicNames) -> dict[str, Any]:
    return serialized_params([e.serialized() for e in events], topics=topics)


async def emit(session: AsyncSession, events: Sequence[TouchOutcome], *, topics: TopicNames) -> None:
    """Queues events in the outbox, in the caller's transaction (``add_serialized_to_outbox``: an id already queued
    is ignored, so a redone unit of work queues no second copy)."""
    await add_serialized_to_outbox(session, [e.serialized() for e in events], topics=topics)


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
    """``progress.insert_decided_touches`` and ``emit`` in one round trip; returns the ids of the touches inserted.
    Only the events of touches actually inserted are queued (in the same statement): a touch id there already
    keeps its row, and no event of this decision, so nothing needs rolling back."""
    if not events:
        return await progress.insert_decided_touches(session, rows=rows)
    result = await session.execute(
        _INSERT_AND_QUEUE, progress.touch_insert_params(rows) | _queue_params(events, topics)
    )
    return set(result.scalars())
