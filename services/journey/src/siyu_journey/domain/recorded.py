"""Touches staff make by hand, as internal tools record them: what a recording is, when it is accepted, and what a
second recording under the same tool id means. Pure: the route stores and publishes what these decide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Literal

from siyu_shared.events.catalog import TouchSent
from siyu_shared.events.catalog.touches import TouchChannel
from siyu_shared.events.envelope import deterministic_event_id

CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of our clock a tool's clock may be: a touch dated later than that is refused."""


class FutureTouch(ValueError):
    """A touch dated in the future (beyond the clock skew allowed)."""


HandKind = Literal["staff", "group"]
"""``staff``: a 1v1 staff member; ``group``: a group activator."""


@dataclass(frozen=True)
class RecordedTouch:
    tenant: str
    touch_id: str
    client_id: str
    person_id: str
    channel: TouchChannel
    kind: HandKind
    staff_id: str
    occurred_at: datetime


class Again(Enum):
    """A recording under a tool id that was recorded before."""

    RETRY = "retry"  # the same touch: nothing changes
    CONFLICT = "conflict"  # other content under the same id: refused


def recorded_touch(
    *,
    tenant: str,
    client_id: str,
    person_id: str,
    channel: TouchChannel,
    kind: HandKind,
    staff_id: str,
    occurred_at: datetime,
    now: datetime,
) -> RecordedTouch:
    """The touch a tool records, its id derived from the tenant and the tool's own id (so a retry has the same)."""
    if occurred_at > now + CLOCK_SKEW:
        raise FutureTouch("occurred_at is in the future")
    return RecordedTouch(
        tenant=tenant,
        touch_id=deterministic_event_id("recorded-touch", tenant, client_id),
        client_id=client_id,
        person_id=person_id,
        channel=channel,
        kind=kind,
        staff_id=staff_id,
        occurred_at=occurred_at,
    )


def again(recorded_before: RecordedTouch, now_recorded: RecordedTouch) -> Again:
    return Again.RETRY if recorded_before == now_recorded else Again.CONFLICT


def sent(touch: RecordedTouch) -> tuple[TouchSent, str]:
    """The ``siyu.touch.sent`` event a new recording publishes, and its deterministic event id."""
    event = TouchSent(
        touch_id=touch.touch_id,
        person_id=touch.person_id,
        channel=touch.channel,
        kind=touch.kind,
        staff_id=touch.staff_id,
        occurred_at=touch.occurred_at,
    )
    return event, deterministic_event_id("touch", touch.tenant, touch.touch_id, "sent")
