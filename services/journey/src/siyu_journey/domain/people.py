"""What the journey knows of a person that events change by rule: the WeCom friendship.

The friendship is a pair, owner staff account and the person's ``external_userid``, changed together, never one
column on its own: 1v1 messages go out from the owner to that external contact, and WeCom refuses a sender who is
not the contact's friend. A person has a friendship when both are known.
"""

from __future__ import annotations

from dataclasses import dataclass


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
