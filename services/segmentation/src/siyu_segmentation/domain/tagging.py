"""Rules, families and the tag set they decide for one person; the diff against the tags the person has.

A rule holds one tag while its condition is true: it adds the tag when the condition becomes true and removes it
when it becomes false. In an exclusive family (the DCBA stage, the frequency x ticket quadrant) only the true rule
with the highest priority holds its tag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from siyu_segmentation.domain.rules import Aggregate, Condition, RuleError, parse_condition
from siyu_shared.values import JsonObject, Text

SLUG = r"^[a-z0-9][a-z0-9_\-.:]{0,63}$"
INT32_MAX = 2**31 - 1


class RuleBody(BaseModel):
    """A rule as written by an operator (JSON over the API, YAML in a pack)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: Text = Field(pattern=SLUG, examples=["super_vip"])
    family: Text | None = Field(default=None, pattern=SLUG, examples=["value"])
    priority: int = Field(
        default=0,
        ge=-INT32_MAX - 1,
        le=INT32_MAX,
        description="In an exclusive family the true rule with the highest wins (an integer column holds it).",
    )
    description: Text = Field(default="", max_length=500)
    enabled: bool = True
    when: JsonObject = Field(examples=[{"count": "orders", "within": "365d", "gt": 10}])

    @field_validator("when")
    @classmethod
    def _valid_condition(cls, when: dict[str, Any]) -> dict[str, Any]:
        parse_condition(when)  # raises RuleError (a ValueError): pydantic reports it at `when`
        return when

    def condition(self) -> Condition:
        return parse_condition(self.when)


@dataclass(frozen=True, slots=True)
class ActiveRule:
    rule_id: str
    version: int
    tag: str
    family: str | None
    priority: int
    condition: Condition


@dataclass(frozen=True, slots=True)
class Decision:
    tag: str
    family: str | None
    rule_id: str
    rule_version: int


@dataclass(frozen=True, slots=True)
class TagDiff:
    added: tuple[Decision, ...]
    removed: tuple[Decision, ...]
    tags: tuple[str, ...]  # the full set after the change

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def validate_rule(raw: Mapping[str, Any]) -> RuleBody:
    """A rule body from plain data; raises RuleError (path, message) or pydantic.ValidationError."""
    when = raw.get("when")
    if when is not None:
        parse_condition(when)  # the precise path first
    return RuleBody.model_validate(raw)


def diff(current: Mapping[str, Decision], desired: Mapping[str, Decision]) -> TagDiff:
    added = tuple(desired[t] for t in sorted(desired.keys() - current.keys()))
    removed = tuple(current[t] for t in sorted(current.keys() - desired.keys()))
    return TagDiff(added=added, removed=removed, tags=tuple(sorted(desired)))


def aggregate_label(agg: Aggregate) -> str:
    target = agg.source if agg.field is None else f"{agg.source}.{agg.field}"
    window = f"@{int(agg.within.total_seconds() // 3600)}h" if agg.within is not None else ""
    scope = f"[{agg.category or agg.channel}]" if agg.category or agg.channel else ""
    return f"{agg.fn}({target}{scope}){window}"


_COLLECTIONS = (set, frozenset, tuple)
_JSON_SCALARS = (str, int, float, bool, list, dict)


def jsonable(value: Any) -> Any:
    """A fact value as JSON: sets sorted, times ISO 8601, exact fractions as floats."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, _COLLECTIONS):
        return sorted(value)
    if value is not None and not isinstance(value, _JSON_SCALARS):
        return float(value)
    return value


@dataclass(frozen=True, slots=True)
class Scope:
    """Rules decided together: one rule, or an exclusive family (first true rule by priority wins)."""

    rules: tuple[ActiveRule, ...]

    @property
    def tags(self) -> list[str]:
        return [r.tag for r in self.rules]


def scopes_for(
    rules: Sequence[ActiveRule], exclusive: dict[str, bool], *, rule_ids: set[str] | None = None
) -> list[Scope]:
    """The scopes containing ``rule_ids`` (all when None); an exclusive family is always taken whole."""
    out: list[Scope] = []
    families: dict[str, list[ActiveRule]] = {}
    for rule in rules:
        if rule.family is not None and exclusive.get(rule.family, False):
            families.setdefault(rule.family, []).append(rule)
        elif rule_ids is None or rule.rule_id in rule_ids:
            out.append(Scope((rule,)))
    for members in families.values():
        if rule_ids is None or any(r.rule_id in rule_ids for r in members):
            ordered = sorted(members, key=lambda r: (-r.priority, r.rule_id))
            out.append(Scope(tuple(ordered)))
    return out


__all__ = ["RuleError"]
