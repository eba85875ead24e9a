"""What the journey knows of a person that events change by rule: the WeCom friendship, and a merge's fold.

The friendship is a pair, owner staff account and the person's ``external_userid``, changed together, never one
column on its own: 1v1 messages go out from the owner to that external contact, and WeCom refuses a sender who is
not the contact's friend. A person has a friendship when both are known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from typing import Any


@dataclass(frozen=True, slots=True)
class Friendship:
    owner_staff_id: str
    external_userid: str


def friendship(owner_staff_id: str | None, external_userid: str | None) -> Friendship | None:
    """The person's current friendship, from the two stored columns (none unless both are set)."""
    if owner_staff_id and external_userid:
        return Friendship(owner_staff_id, external_userid)
    return None


def after_added(current: Friendship | None, added: Friendship) -> Friendship:
    """A staff account added the person: the first adder owns the relationship while it lasts, so an existing
    friendship stays as it is; without one, the adder's becomes the person's."""
    return current if current is not None else added


def after_removed(current: Friendship | None, staff_id: str) -> Friendship | None:
    """A staff account lost the person: the owner losing them (or a removal while no friendship is known) ends the
    friendship; another staff account's removal leaves the owner's as it is."""
    if current is None or current.owner_staff_id == staff_id:
        return None
    return current


def after_merge(survivor: Friendship | None, merged: Friendship | None) -> Friendship | None:
    """A merge keeps the survivor's friendship if it has one, else the merged person's: a pair, never an owner
    from one and an ``external_userid`` from the other."""
    return survivor if survivor is not None else merged


@dataclass(frozen=True, slots=True)
class Person:
    """The columns a merge folds into the survivor."""

    tags: frozenset[str] = frozenset()
    facts: Mapping[str, Any] = field(default_factory=dict)
    opted_out: bool = False
    paid_total_fen: int = 0
    last_paid_at: datetime | None = None
    friendship: Friendship | None = None


def fold(survivor: Person, merged: Sequence[Person]) -> Person:
    """The survivor after a merge of all of ``merged`` (in the order given): everyone's tags; facts, the survivor's
    winning, then the earlier merged person's; opted out if anyone was; paid totals summed; the latest payment;
    the friendship as ``after_merge`` keeps it, the survivor's else the first merged person's with one."""
    everyone = [survivor, *merged]
    facts: dict[str, Any] = {}
    for p in reversed(everyone):
        facts.update(p.facts)
    return Person(
        tags=frozenset().union(*(p.tags for p in everyone)),
        facts=facts,
        opted_out=any(p.opted_out for p in everyone),
        paid_total_fen=sum(p.paid_total_fen for p in everyone),
        last_paid_at=max((p.last_paid_at for p in everyone if p.last_paid_at is not None), default=None),
        friendship=reduce(after_merge, (p.friendship for p in merged), survivor.friendship),
    )
