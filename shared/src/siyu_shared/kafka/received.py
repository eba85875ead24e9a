"""An event as a handler sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import EventData

E = TypeVar("E", bound=EventData)


@dataclass(frozen=True, slots=True)
class Received(Generic[E]):
    """An event as a handler sees it: the envelope and its typed payload."""

    envelope: CloudEvent
    data: E

    @property
    def tenant(self) -> str:
        return self.envelope.tenant
