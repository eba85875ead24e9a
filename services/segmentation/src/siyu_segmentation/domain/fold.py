"""One event's effect on a person's lead / contact / group facts, on a profile row held in memory (no I/O).

The batch handler locks the round's profile rows, applies each person's event here, and writes the rows back with
one statement. Order and touch aggregates are not folded here: they are derived from the person's fact rows
(``domain/aggregates.py``). The earliest sighting gives the first channel, first / last seen widen, sets are sorted
and distinct, the latest form answers win, and removing the last WeCom staff of a friend makes the relationship
``removed``.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from datetime import datetime
from typing import Any

from siyu_shared.events.catalog import (
    ContactAdded,
    ContactRemoved,
    GroupJoined,
    GroupLeft,
    LeadCaptured,
    OrderPaid,
    SourceRef,
)

Row = MutableMapping[str, Any]

FOLDED_COLUMNS: tuple[str, ...] = (
    "first_seen_at",
    "last_seen_at",
    "first_channel",
    "channels",
    "account_kinds",
    "partner_ids",
    "campaign_ids",
    "lead_kinds",
    "lead_count",
    "incentive",
    "has_phone",
    "wecom_status",
    "wecom_added_at",
    "wecom_staff",
    "groups",
    "attributes",
)


def fold_event(row: Row, data: Any, *, created: bool) -> None:
    """Apply one event's facts to ``row`` (a profile row as column → value; ``created``: the row is new)."""
    if isinstance(data, LeadCaptured):
        at, src = data.occurred_at, data.source
        row["first_channel"] = _first_channel(row, at, src.channel)
        row["lead_count"] = int(row.get("lead_count") or 0) + 1
        row["incentive"] = bool(row.get("incentive")) or data.incentive
        row["has_phone"] = bool(row.get("has_phone")) or data.has_phone
        row["attributes"] = {**(row.get("attributes") or {}), **dict(data.attributes)}
        _seen(row, at)
        _add_sources(row, src)
        _add(row, "lead_kinds", [data.kind])
    elif isinstance(data, ContactAdded):
        at = data.occurred_at
        row["first_channel"] = _first_channel(row, at, data.source.channel)
        row["wecom_status"] = "friend"
        row["wecom_added_at"] = _least(row.get("wecom_added_at"), at)
        _seen(row, at)
        _add_sources(row, data.source)
        _add(row, "wecom_staff", [data.staff_id])
    elif isinstance(data, ContactRemoved):
        _remove(row, "wecom_staff", data.staff_id)
        if not row["wecom_staff"] and row.get("wecom_status") == "friend":
            row["wecom_status"] = "removed"
    elif isinstance(data, GroupJoined):
        _seen(row, data.occurred_at)
        _add(row, "groups", [data.chat_id])
    elif isinstance(data, GroupLeft):
        _remove(row, "groups", data.chat_id)
    elif isinstance(data, OrderPaid):
        if created:
            row["first_channel"] = data.channel
        _seen(row, data.paid_at)
        _add(row, "channels", [data.channel])
    # Refunds, closes and touches only create the profile (their aggregates come from ``domain/aggregates.py``).


def _least(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _seen(row: Row, at: datetime) -> None:
    row["first_seen_at"] = _least(row.get("first_seen_at"), at)
    row["last_seen_at"] = _greatest(row.get("last_seen_at"), at)


def _first_channel(row: Row, at: datetime, channel: str) -> Any:
    """The channel of the earliest sighting (decided against first seen before this event widens it)."""
    first = row.get("first_seen_at")
    return channel if first is None or first > at else row.get("first_channel")


def _add(row: Row, column: str, members: Iterable[str | None]) -> None:
    values = {m for m in members if m}
    if values:
        row[column] = sorted(set(row.get(column) or ()) | values)


def _remove(row: Row, column: str, member: str) -> None:
    row[column] = [m for m in (row.get(column) or ()) if m != member]


def _add_sources(row: Row, src: SourceRef) -> None:
    _add(row, "channels", [src.channel])
    _add(row, "account_kinds", [src.account_kind if src.account_kind != "unknown" else None])
    _add(row, "partner_ids", [src.partner_id])
    _add(row, "campaign_ids", [src.campaign_id])
