"""touches.v1: what journeys did for a person."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from siyu_shared.events.catalog.common import PersonId, Timestamp
from siyu_shared.events.registry import EventData, event_type
from siyu_shared.events.topics import Topic

TouchChannel = Literal["wecom_1v1", "wecom_moments", "wecom_group", "sms", "official_account", "coupon"]
TouchKind = Literal["journey", "staff", "group"]


class _Touch(EventData):
    touch_id: str
    person_id: str = PersonId
    channel: TouchChannel
    kind: TouchKind = "journey"
    journey_id: str | None = Field(default=None, max_length=64)
    journey_version: int | None = None
    step_id: str | None = Field(default=None, max_length=64)
    staff_id: str | None = Field(default=None, max_length=64)
    persona: str | None = Field(default=None, max_length=64)
    campaign_id: str | None = Field(default=None, max_length=64)
    occurred_at: Timestamp


@event_type("siyu.touch.sent", topic=Topic.TOUCHES)
class TouchSent(_Touch):
    """A touch was delivered to the channel (WeCom, SMS, sandbox…)."""


@event_type("siyu.touch.failed", topic=Topic.TOUCHES)
class TouchFailed(_Touch):
    """A touch failed permanently at the channel."""

    reason: str


@event_type("siyu.touch.skipped", topic=Topic.TOUCHES)
class TouchSkipped(_Touch):
    """A touch was not sent: capped, opted out, no consent, overridden by a campaign…"""

    reason: str
