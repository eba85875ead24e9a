"""leads.v1: leads captured from public platforms."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from siyu_shared.events.catalog.common import PersonId, SourceRef, Timestamp
from siyu_shared.events.registry import EventData, event_type
from siyu_shared.events.topics import Topic

AttributeValue = str | int | float | bool | list[str]


@event_type("siyu.lead.captured", topic=Topic.LEADS)
class LeadCaptured(EventData):
    """A lead (form fill, private message, follow, group join, consult) was captured on a public platform.

    Carries no personal data in clear: phones and names stay in ingest; `has_phone` says whether one was given.
    """

    lead_id: str = Field(max_length=200)
    person_id: str = PersonId
    kind: Literal["form", "private_message", "follow", "group_join", "consult", "other"]
    occurred_at: Timestamp
    source: SourceRef
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict,
        description="Typed form answers (skin_type, profession, age_band, city, interests…).",
    )
    has_phone: bool = False
    incentive: bool = Field(default=False, description="The lead came through an incentive (red packet, gift).")
