"""Which journeys an event enters a person into."""

from __future__ import annotations

from dataclasses import dataclass

from siyu_journey.domain.definition import Trigger


@dataclass(frozen=True, slots=True)
class Occurrence:
    """Something that happened to a person, as journeys see it."""

    event: str  # a TriggerEvent
    tag: str | None = None
    paid_total_fen: int | None = None
    incentive: bool | None = None


def matches(trigger: Trigger, occurrence: Occurrence) -> bool:
    if trigger.event != occurrence.event:
        return False
    if trigger.tag is not None and trigger.tag != occurrence.tag:
        return False
    if trigger.min_amount_fen is not None and (occurrence.paid_total_fen or 0) < trigger.min_amount_fen:
        return False
    return trigger.incentive is None or trigger.incentive == occurrence.incentive
