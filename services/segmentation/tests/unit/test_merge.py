"""Folding a merged person's facts into the survivor."""

from __future__ import annotations

from datetime import UTC, datetime

from siyu_segmentation.domain.merge import fold_profiles

EARLY, MID, LATE = (datetime(2026, m, 1, tzinfo=UTC) for m in (1, 6, 11))


def test_sets_union_counts_add_seen_widens_and_the_survivor_answers_win() -> None:
    survivor = {
        "first_seen_at": MID,
        "last_seen_at": MID,
        "first_channel": "tmall",
        "channels": ["tmall"],
        "lead_count": 1,
        "incentive": False,
        "wecom_status": "none",
        "attributes": {"skin_type": "oily"},
    }
    merged = {
        "first_seen_at": EARLY,
        "last_seen_at": LATE,
        "first_channel": "xiaohongshu",
        "channels": ["xiaohongshu"],
        "account_kinds": ["kol"],
        "lead_count": 2,
        "incentive": True,
        "wecom_status": "friend",
        "wecom_added_at": LATE,
        "wecom_staff": ["s1"],
        "attributes": {"skin_type": "dry", "city": "sh"},
    }
    folded = fold_profiles(survivor, [merged])
    assert folded is not None
    assert folded["channels"] == ["tmall", "xiaohongshu"]
    assert folded["account_kinds"] == ["kol"]
    assert folded["lead_count"] == 3
    assert folded["incentive"] is True
    assert (folded["first_seen_at"], folded["last_seen_at"]) == (EARLY, LATE)
    assert folded["first_channel"] == "xiaohongshu"  # the earliest sighting
    assert folded["wecom_status"] == "friend"
    assert folded["wecom_staff"] == ["s1"]
    assert folded["attributes"] == {"skin_type": "oily", "city": "sh"}


def test_a_survivor_without_a_profile_takes_the_merged_one() -> None:
    folded = fold_profiles(None, [{"first_seen_at": EARLY, "last_seen_at": EARLY, "lead_count": 1}])
    assert folded is not None
    assert folded["lead_count"] == 1
    assert fold_profiles(None, []) is None
