"""tags.v1: tag changes decided by segmentation rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from siyu_shared.events.catalog.common import PersonId, Timestamp
from siyu_shared.events.registry import EventData, event_type
from siyu_shared.events.topics import Topic


class TagChange(BaseModel):
    """One tag gained or lost, with the rule version that decided it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tag: str
    family: str | None = None
    rule_id: str
    rule_version: int = Field(ge=1)


@event_type("siyu.tags.changed", topic=Topic.TAGS)
class TagsChanged(EventData):
    """A person's tag set really changed (never emitted for a no-op re-evaluation)."""

    person_id: str = PersonId
    added: list[TagChange] = Field(default_factory=list)
    removed: list[TagChange] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list, description="The full tag set after the change.")
    facts: dict[str, Any] = Field(default_factory=dict, description="The facts that decided.")
    evaluated_at: Timestamp
    cause: str | None = Field(
        default=None,
        description=(
            "What triggered the evaluation: `event:<event id>` (a live event), `backfill:<id>` (a rule was created "
            "or changed) or `sweep:<time>` (time passed). Lets a consumer treat mass re-tagging differently."
        ),
    )
