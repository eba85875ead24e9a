"""Folding merged persons' facts into the survivor (order and touch facts are re-derived from their rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from siyu_segmentation.domain.facts import FACTS

_ANY = ("incentive", "has_phone")
_WECOM_RANK = {"friend": 2, "removed": 1, "none": 0}


def fold_profiles(survivor: Mapping[str, Any] | None, merged: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The survivor's lead, contact and attribute facts after absorbing ``merged`` (rows as column → value).

    Sets are unions, counts add up, first/last seen widen, the earliest-seen profile gives the first channel, a
    WeCom friend anywhere makes a friend, and the survivor's own form answers win over the merged ones.
    """
    rows = [r for r in ([survivor] if survivor else []) + list(merged)]
    if not rows:
        return None
    out: dict[str, Any] = {}
    for name, kind in FACTS.items():
        if kind == "set" and name != "categories":
            out[name] = sorted({m for r in rows for m in (r.get(name) or ())})
    out["lead_count"] = sum(int(r.get("lead_count") or 0) for r in rows)
    for name in _ANY:
        out[name] = any(bool(r.get(name)) for r in rows)
    seen = [r for r in rows if r.get("first_seen_at") is not None]
    out["first_seen_at"] = min((r["first_seen_at"] for r in seen), default=None)
    out["last_seen_at"] = max((r["last_seen_at"] for r in rows if r.get("last_seen_at") is not None), default=None)
    earliest = min(seen, key=lambda r: r["first_seen_at"]) if seen else rows[0]
    out["first_channel"] = earliest.get("first_channel") or next(
        (r.get("first_channel") for r in rows if r.get("first_channel")), None
    )
    out["wecom_status"] = max((r.get("wecom_status") or "none" for r in rows), key=lambda s: _WECOM_RANK.get(s, 0))
    added = [r["wecom_added_at"] for r in rows if r.get("wecom_added_at") is not None]
    out["wecom_added_at"] = min(added, default=None)
    attributes: dict[str, Any] = {}
    for r in reversed(rows):  # merged first, survivor last: the survivor's answers win
        attributes.update(r.get("attributes") or {})
    out["attributes"] = attributes
    return out
