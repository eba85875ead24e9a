"""touches.v1 events from touch rows, through the outbox (deterministic ids: one event per touch outcome)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_shared.events.catalog.touches import TouchFailed, TouchSent, TouchSkipped
from siyu_shared.events.envelope import CloudEvent, deterministic_event_id
from siyu_shared.events.registry import envelope
from siyu_shared.events.topics import TopicNames
from siyu_shared.messaging.outbox import add_to_outbox

Outcome = Literal["sent", "failed", "skipped"]
SOURCE = "/siyu/journey"


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


async def emit(session: AsyncSession, events: list[CloudEvent], *, topics: TopicNames) -> None:
    """Queues events in the outbox, in the caller's transaction (one cached INSERT over the rows)."""
    await add_to_outbox(session, events, topics=topics)
