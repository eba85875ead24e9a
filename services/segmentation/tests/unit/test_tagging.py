"""Deciding the tag set: exclusive families, priorities, diffs that are empty for no-ops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from siyu_segmentation.domain.compiled import CompiledRules
from siyu_segmentation.domain.facts import Profile
from siyu_segmentation.domain.rules import parse_condition
from siyu_segmentation.domain.tagging import ActiveRule, Decision, diff, scopes_for

from ..conftest import ALICE, BOB, NOW


def decide(
    rules: Sequence[ActiveRule], exclusive: Mapping[str, bool], profile: Profile, now: datetime
) -> dict[str, Decision]:
    return CompiledRules(rules, exclusive).decide(profile, now)


def deciding_facts(rules: Sequence[ActiveRule], tags: list[str], profile: Profile, now: datetime) -> dict[str, Any]:
    return CompiledRules(rules, {}).deciding_facts(tags, profile, now)


def rule(rule_id: str, tag: str, when: dict[str, object], family: str | None = None, priority: int = 0) -> ActiveRule:
    return ActiveRule(rule_id, 1, tag, family, priority, parse_condition(when))


DCBA = [
    rule("d", "D_stranger", {"fact": "lead_count", "gte": 0}, "dcba", 0),
    rule("c", "C_ice_broken", {"fact": "wecom_status", "eq": "friend"}, "dcba", 1),
    rule("b", "B_relationship", {"count": "touches", "gte": 1}, "dcba", 2),
    rule("a", "A_buying", {"count": "orders", "gte": 1}, "dcba", 3),
]


def test_an_exclusive_family_holds_only_its_highest_true_tag() -> None:
    assert set(decide(DCBA, {"dcba": True}, ALICE, NOW)) == {"A_buying"}
    assert set(decide(DCBA, {"dcba": True}, BOB, NOW)) == {"D_stranger"}
    # The same rules in a family that is not exclusive: every true rule holds its tag.
    assert set(decide(DCBA, {}, ALICE, NOW)) == {"A_buying", "B_relationship", "C_ice_broken", "D_stranger"}


def test_priority_ties_go_to_the_smaller_rule_id() -> None:
    rules = [
        rule("z", "z_tag", {"fact": "order_count", "gte": 0}, "f"),
        rule("m", "m_tag", {"fact": "order_count", "gte": 0}, "f"),
    ]
    assert set(decide(rules, {"f": True}, ALICE, NOW)) == {"m_tag"}


def test_diff_is_empty_when_nothing_changes_and_names_both_sides_otherwise() -> None:
    held = decide(DCBA, {"dcba": True}, BOB, NOW)
    assert not diff(held, decide(DCBA, {"dcba": True}, BOB, NOW)).changed
    moved = diff(held, decide(DCBA, {"dcba": True}, ALICE, NOW))
    assert [d.tag for d in moved.added] == ["A_buying"]
    assert [d.tag for d in moved.removed] == ["D_stranger"]
    assert moved.tags == ("A_buying",)
    # A new rule version with the same outcome is not a change of the tag set.
    bumped = {t: Decision(d.tag, d.family, d.rule_id, 2) for t, d in held.items()}
    assert not diff(held, bumped).changed


def test_deciding_facts_name_what_the_rule_looked_at() -> None:
    vip = rule(
        "vip",
        "vip",
        {"all": [{"fact": "order_count", "gte": 3}, {"sum": "orders.amount_fen", "within": "365d", "gte": 1}]},
    )
    facts = deciding_facts([vip], ["vip"], ALICE, NOW)
    assert facts == {"order_count": 3, "sum(orders.amount_fen)@8760h": 48000}


def test_scopes_take_an_exclusive_family_whole_and_other_rules_alone() -> None:
    vip = rule("vip", "vip", {"fact": "order_count", "gt": 10})
    rules = [*DCBA, vip]
    by_rule = scopes_for(rules, {"dcba": True}, rule_ids={"b"})
    assert [[r.rule_id for r in s.rules] for s in by_rule] == [["a", "b", "c", "d"]]  # by priority, highest first
    every = scopes_for(rules, {"dcba": True})
    assert sorted(tuple(s.tags) for s in every) == [
        ("A_buying", "B_relationship", "C_ice_broken", "D_stranger"),
        ("vip",),
    ]
    # Not exclusive: every rule is its own scope.
    assert len(scopes_for(rules, {}, rule_ids={"a", "vip"})) == 2
