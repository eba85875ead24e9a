"""A journey definition: an SOP of the middle office as data (JSON, or YAML for GitOps).

A trigger enrols a person; steps run in list order unless a step names its ``next``; a wait parks the enrolment
on a durable timer; a send queues a touch; branch, split and goto move elsewhere; exit ends it early.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from siyu_shared.events.catalog.touches import TouchChannel
from siyu_shared.values import Count, Int64, Text, unstorable

TriggerEvent = Literal["contact.added", "lead.captured", "order.paid", "group.joined", "tag.added", "tag.removed"]
ExitEvent = Literal["order.paid", "opted_out", "contact.removed"]
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
"""A local time of day, ``HH:MM``, in ASCII digits (``\\d`` would take any script's)."""
_HHMM = re.compile(HHMM)
_SLUG = r"^[a-z0-9][a-z0-9_\-]{0,63}$"

# What a definition holds lands in columns and events: text without NUL, each bounded by the column it reaches
# (touches.template, .persona, .campaign_id and .staff_id are varchar(64), a tag is at most 64 wherever it is
# kept), numbers in the range of their column (touches.priority is an integer) or of a time (a wait must end
# before year 9998), floats finite, and lists of a size an operator writes by hand.
INT32_MAX = 2**31 - 1
Name = Annotated[Text, Field(min_length=1, max_length=64)]
"""A template name, tag, staff account, persona, campaign id or fact name."""
Reason = Annotated[Text, Field(min_length=1, max_length=200)]
Priority = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
FactValue = Annotated[Text, Field(max_length=1000)] | Int64 | Finite | bool
MAX_WAIT_SECONDS = 10 * 366 * 86400
"""Ten years: a wait longer than that is a mistake, and its due time must stay a time every layer holds."""
MAX_PERIOD_DAYS = 100 * 366
MAX_STEPS = 500
MAX_TEMPLATE_CHARS = 20_000


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Trigger(_Model):
    event: TriggerEvent
    tag: Name | None = Field(default=None, description="For tag.added / tag.removed: which tag.")
    min_amount_fen: Count | None = Field(default=None, description="For order.paid: at least this much.")
    incentive: bool | None = Field(default=None, description="For lead.captured: only (non-)incentive leads.")

    @model_validator(mode="after")
    def _tag_for_tag_triggers(self) -> Trigger:
        if self.event in ("tag.added", "tag.removed") and not self.tag:
            raise ValueError(f"trigger {self.event} needs a tag")
        return self


class Entry(_Model):
    """Who may enter again: ``once`` ever, ``once_per_period`` (one entry per period_days), or ``reentry``."""

    mode: Literal["once", "once_per_period", "reentry"] = "once"
    period_days: int = Field(default=7, ge=1, le=MAX_PERIOD_DAYS)


class Condition(_Model):
    """All given parts must hold."""

    has_tag: Name | None = None
    lacks_tag: Name | None = None
    fact_gte: dict[Name, Finite] = Field(default_factory=dict, max_length=50)
    fact_eq: dict[Name, FactValue] = Field(default_factory=dict, max_length=50)
    paid_since_entry: bool | None = Field(default=None, description="Whether an order was paid since entry.")


class _Step(_Model):
    id: Text = Field(pattern=_SLUG)
    next: Name | None = Field(default=None, description="The step after this one (default: the next in the list).")


class Wait(_Step):
    kind: Literal["wait"]
    seconds: int | None = Field(default=None, ge=0, le=MAX_WAIT_SECONDS)
    until_local: Text | None = Field(default=None, description="HH:MM Asia/Shanghai: the next such time.")

    @model_validator(mode="after")
    def _one_of(self) -> Wait:
        if (self.seconds is None) == (self.until_local is None):
            raise ValueError(f"wait step {self.id!r} needs exactly one of seconds / until_local")
        if self.until_local is not None and not _HHMM.fullmatch(self.until_local):
            raise ValueError(f"wait step {self.id!r}: until_local must be HH:MM")
        return self


class Send(_Step):
    kind: Literal["send"]
    channel: TouchChannel = "wecom_1v1"
    template: Name
    campaign_id: Name | None = None


class Branch(_Step):
    kind: Literal["branch"]
    condition: Condition
    then: Name
    otherwise: Name | None = Field(default=None, description="Default: the step after the branch.")


class Variant(_Model):
    name: Name
    weight: int = Field(ge=0, le=INT32_MAX)
    next: Name


class Split(_Step):
    """A/B split, deterministic by person: the same person always lands in the same variant."""

    kind: Literal["split"]
    variants: list[Variant] = Field(min_length=2, max_length=100)

    @field_validator("variants")
    @classmethod
    def _weights(cls, variants: list[Variant]) -> list[Variant]:
        if sum(v.weight for v in variants) <= 0:
            raise ValueError("split weights must add up to more than 0")
        return variants


class Goto(_Step):
    """Jump to a stage (another step)."""

    kind: Literal["goto"]
    target: Name


class Exit(_Step):
    kind: Literal["exit"]
    reason: Reason = "goal"


Step = Annotated[Wait | Send | Branch | Split | Goto | Exit, Field(discriminator="kind")]


class JourneyDefinition(_Model):
    id: Text = Field(pattern=_SLUG, examples=["greeting"])
    name: Text = Field(min_length=1, max_length=200)
    trigger: Trigger
    entry: Entry = Entry()
    exit_on: list[ExitEvent] = Field(default_factory=list, max_length=10)
    exit_on_tag_lost: list[Name] = Field(default_factory=list, max_length=100)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    templates: dict[Name, Annotated[Text, Field(max_length=MAX_TEMPLATE_CHARS)]] = Field(
        default_factory=dict, max_length=MAX_STEPS, description="Jinja2 (sandboxed) templates by name."
    )
    persona: Name | None = Field(default=None, description="The voice touches go out as (e.g. 小完子).")
    staff_pool: list[Name] = Field(
        default_factory=list,
        max_length=1000,
        description="Staff accounts new contacts are assigned to (by person hash).",
    )
    priority: Priority = Field(default=0, description="Campaign priority: a higher one overrides lower ones that day.")
    campaign_id: Name | None = None

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """Before any field converts it (an integer beyond 64 bits would pass as a float): NUL and int64 anywhere."""
        reason = unstorable(data, where="definition")
        if reason:
            raise ValueError(reason)
        return data

    @cached_property
    def _positions(self) -> dict[str, int]:
        """Each step's index by id (a definition is immutable; every transition walks its steps by id)."""
        return {s.id: i for i, s in reversed(list(enumerate(self.steps)))}

    def step(self, step_id: str) -> Step:
        return self.steps[self._positions[step_id]]

    def successor(self, step_id: str) -> str | None:
        """Where control goes after a step that does not choose (wait, send): its ``next``, else the next listed."""
        index = self._positions[step_id]
        step = self.steps[index]
        if step.next is not None:
            return step.next
        return self.steps[index + 1].id if index + 1 < len(self.steps) else None

    def targets(self, step_id: str) -> list[str]:
        """Every step control can go to from ``step_id`` (for validation)."""
        step = self.step(step_id)
        match step:
            case Branch():
                other = step.otherwise if step.otherwise is not None else self.successor(step_id)
                return [t for t in (step.then, other) if t is not None]
            case Split():
                return [v.next for v in step.variants]
            case Goto():
                return [step.target]
            case Exit():
                return []
            case _:
                successor = self.successor(step_id)
                return [successor] if successor is not None else []


def parse_definition(raw: dict[str, Any]) -> JourneyDefinition:
    return JourneyDefinition.model_validate(raw)
