"""persons.v1: identity changes every service must follow."""

from __future__ import annotations

from pydantic import Field

from siyu_shared.events.catalog.common import PersonId, Timestamp
from siyu_shared.events.registry import EventData, event_type
from siyu_shared.events.topics import Topic


@event_type(
    "siyu.person.merged",
    topic=Topic.PERSONS,
    key="The survivor's person id (`data.survivor_id`); also the CloudEvents `subject`.",
)
class PersonMerged(EventData):
    """Two or more persons were found to be one; every service folds `merged_ids` into `survivor_id`."""

    survivor_id: str = PersonId
    merged_ids: list[str] = Field(min_length=1)
    reason: str = Field(description="The identifier kind that linked them, e.g. `phone`.")
    merged_at: Timestamp


@event_type("siyu.person.erased", topic=Topic.PERSONS)
class PersonErased(EventData):
    """An erasure request: wipe personal data of the person; keep only what the ledger needs."""

    person_id: str = PersonId
    requested_at: Timestamp
