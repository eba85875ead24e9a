"""Channel senders: how a touch leaves the building. Each says whether its channel deduplicates on our touch id
(``idempotent``), which decides what recovery may do with a touch whose send outcome a crash has hidden."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class Outgoing:
    touch_id: str
    tenant: str
    person_id: str
    channel: str
    staff_id: str | None
    persona: str | None
    body: str
    recipient: str | None = None  # the channel's id of the person (WeCom external_userid)


@dataclass(frozen=True, slots=True)
class Delivered:
    kind: Literal["delivered"] = "delivered"


@dataclass(frozen=True, slots=True)
class Failed:
    """The channel refused for good (invalid recipient, not a friend any more…)."""

    reason: str
    kind: Literal["failed"] = "failed"


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Transient (timeout, 5xx, rate limited): the touch goes back to the queue for ``after_s``."""

    after_s: float
    reason: str
    kind: Literal["retry"] = "retry"


Outcome = Delivered | Failed | RetryLater


class Sender(Protocol):
    @property
    def idempotent(self) -> bool: ...

    async def send(self, touches: Sequence[Outgoing]) -> list[Outcome]: ...


class ChannelRouter:
    """Routes each touch to its channel's sender (a default for the rest)."""

    def __init__(self, default: Sender, by_channel: Mapping[str, Sender] | None = None) -> None:
        self._default = default
        self._by_channel = dict(by_channel or {})

    def for_channel(self, channel: str) -> Sender:
        return self._by_channel.get(channel, self._default)

    async def send(self, touches: Sequence[Outgoing]) -> list[Outcome]:
        outcomes: dict[str, Outcome] = {}
        groups: dict[int, tuple[Sender, list[Outgoing]]] = {}
        for touch in touches:
            sender = self.for_channel(touch.channel)
            groups.setdefault(id(sender), (sender, []))[1].append(touch)
        for sender, batch in groups.values():
            for touch, outcome in zip(batch, await sender.send(batch), strict=True):
                outcomes[touch.touch_id] = outcome
        return [outcomes[t.touch_id] for t in touches]
