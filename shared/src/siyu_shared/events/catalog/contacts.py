"""contacts.v1: WeCom relationship changes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from siyu_shared.events.catalog.common import PersonId, SourceRef, Timestamp
from siyu_shared.events.registry import EventData, event_type
from siyu_shared.events.topics import Topic


@event_type("siyu.contact.added", topic=Topic.CONTACTS)
class ContactAdded(EventData):
    """A person became a WeCom external contact (friend) of a staff account."""

    person_id: str = PersonId
    external_userid: str = Field(max_length=128)
    staff_id: str = Field(max_length=64)
    occurred_at: Timestamp
    source: SourceRef
    welcome_code_present: bool = False


@event_type("siyu.contact.removed", topic=Topic.CONTACTS)
class ContactRemoved(EventData):
    """A WeCom friendship ended: the staff deleted the customer or the customer deleted the staff."""

    person_id: str = PersonId
    external_userid: str = Field(max_length=128)
    staff_id: str = Field(max_length=64)
    removed_by: Literal["staff", "customer", "transfer"]
    occurred_at: Timestamp


@event_type("siyu.group.joined", topic=Topic.CONTACTS)
class GroupJoined(EventData):
    """A person joined a WeCom customer group (JoinScene 0 = invited by a member, 3 = scanned the group QR)."""

    person_id: str = PersonId
    chat_id: str
    join_scene: int
    occurred_at: Timestamp


@event_type("siyu.group.left", topic=Topic.CONTACTS)
class GroupLeft(EventData):
    """A person left a WeCom customer group (QuitScene 0 = left on their own, 1 = removed)."""

    person_id: str = PersonId
    chat_id: str
    quit_scene: int
    occurred_at: Timestamp
