"""The compiled rules (the service's one Python evaluator) answer as the language's semantics say: the shared cases,
the shipped packs on random profiles (edge values included) against the plain AST walk of ``tests/reference.py``,
tag decisions and the facts that decided."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from siyu_segmentation.domain.compiled import CompiledRules
from siyu_segmentation.domain.facts import OrderFact, Profile, TouchFact
from siyu_segmentation.domain.rules import parse_condition
from siyu_segmentation.domain.tagging import ActiveRule
from siyu_segmentation.packs import shipped_packs

from ..conftest import ALICE, BOB, NOW, Case
from ..reference import decide, deciding_facts, evaluate

EXTRA = [
    {"fact": "avg_order_fen", "gte": 16000},
    {"fact": "avg_order_fen", "lt": 16000.5},
    {"fact": "mean_interval_days", "between": [0.5, 45]},
    {"fact": "lead_count", "in": [1, 2]},
    {"fact": "lead_count", "ne": 2},
    {"fact": "lead_count", "eq": 2.0},
    {"fact": "incentive", "ne": True},
    {"fact": "wecom_status", "ne": "friend"},
    {"fact": "groups", "exists": False},
    {"fact": "last_touch_at", "within": "30d"},
    {"fact": "first_seen_at", "older_than": "100d"},
    {"count": "orders", "within": "365d", "between": [1, 3]},
    {"count": "orders", "gt": 10},
    {"count": "orders", "category": "skincare", "gte": 1},
    {"sum": "orders.net_fen", "within": "365d", "gte": 30000},
    {"avg": "orders.amount_fen", "gte": 15000.5},
    {"not": {"count": "touches", "channel": "sms", "gte": 1}},
    {"count": "touches", "within": "30d", "gte": 1},
    {"count": "touches", "channel": "wecom_1v1", "within": "90d", "lt": 2},
    {"min": "orders.amount_fen", "within": "90d", "lte": 12000},
    {"max": "orders.refunded_fen", "gte": 100},
    {"avg": "orders.net_fen", "category": "makeup", "within": "365d", "gt": 20000},
    {"sum": "orders.refunded_fen", "category": "skincare", "between": [1, 5000]},
]


def _holds(rule: ActiveRule, profile: Profile) -> bool:
    return rule.tag in CompiledRules([rule], {}).decide(profile, NOW)


def test_the_shared_cases(rule_case: Case) -> None:
    rule = ActiveRule("r", 1, "t", None, 0, parse_condition(rule_case.when))
    assert _holds(rule, rule_case.profile) is rule_case.expected


def _random_profile(rng: random.Random, n: int) -> Profile:
    def maybe(value: Any) -> Any:
        return value if rng.random() < 0.8 else None

    def ago(days: float) -> Any:
        return NOW - timedelta(days=days)

    days = [0, 1, 29, 30, 31, 59, 60, 61, 89, 90, 91, 364, 365, 366, 400]
    orders = tuple(
        OrderFact(
            f"o{i}",
            ago(rng.choice(days)),
            rng.choice([0, 100, 12000, 29999, 30000, 50000, 60000]),
            rng.choice([0, 0, 100, 5000]),
            rng.random() < 0.2,
            tuple(rng.sample(["skincare", "makeup"], rng.randint(0, 2))),
        )
        for i in range(rng.choice([0, 0, 1, 2, 3, 4, 5, 11, 12]))
    )
    touches = tuple(
        TouchFact(f"t{i}", ago(rng.choice(days)), rng.choice(["sms", "wecom_1v1"]), rng.choice(["sent", "failed"]))
        for i in range(rng.randint(0, 4))
    )
    values = {
        "first_seen_at": maybe(ago(rng.choice(days))),
        "last_seen_at": maybe(ago(rng.choice(days))),
        "first_channel": maybe(rng.choice(["xiaohongshu", "douyin", "tmall"])),
        "channels": set(rng.sample(["xiaohongshu", "douyin", "tmall"], rng.randint(0, 3))),
        "lead_count": rng.choice([0, 1, 2, 3]),
        "incentive": rng.choice([True, False, None]),
        "wecom_status": maybe(rng.choice(["friend", "removed", "none"])),
        "groups": set(rng.sample(["g1", "g2"], rng.randint(0, 2))),
        "order_count": rng.choice([0, 1, 3, 4, 10, 11]),
        "last_order_at": maybe(ago(rng.choice(days))),
        "avg_order_fen": maybe(Fraction(Decimal(rng.choice(["16000", "16000.5", "49999.99", "50000", "50000.0"])))),
        "mean_interval_days": maybe(Fraction(Decimal(rng.choice(["0.5", "45", "45.0000001", "1"])))),
        "touches_received": rng.randint(0, 4),
        "rfm_r": maybe(rng.randint(1, 5)),
        "rfm_f": maybe(rng.randint(1, 5)),
        "rfm_m": maybe(rng.randint(1, 5)),
        "last_touch_at": maybe(ago(rng.choice(days))),
    }
    attributes = {"skin_type": rng.choice(["dry", "oily"]), "age": rng.choice([17, 31, "30-35"])}
    return Profile(f"p{n}", values, attributes, orders, touches)


def _pack_rules() -> tuple[list[ActiveRule], dict[str, bool]]:
    rules: list[ActiveRule] = []
    exclusive: dict[str, bool] = {}
    for name in ("dcba", "lifecycle", "rfm", "channel"):
        pack = shipped_packs()[name]
        exclusive |= {f.name: f.exclusive for f in pack.families}
        for i, r in enumerate(pack.rules):
            rules.append(ActiveRule(r.id, i + 1, r.tag, r.family, r.priority, r.condition()))
    for i, when in enumerate(EXTRA):
        rules.append(ActiveRule(f"x{i}", 1, f"x{i}", None, 0, parse_condition(when)))
    return rules, exclusive


@pytest.mark.parametrize("seed", range(4))
def test_the_packs_on_random_profiles(seed: int) -> None:
    rules, exclusive = _pack_rules()
    compiled = CompiledRules(rules, exclusive)
    alone = {rule.rule_id: CompiledRules([rule], {}) for rule in rules}
    rng = random.Random(seed)
    for profile in [ALICE, BOB, *(_random_profile(rng, n) for n in range(300))]:
        for rule in rules:
            holds = rule.tag in alone[rule.rule_id].decide(profile, NOW)
            assert holds is evaluate(rule.condition, profile, NOW), (rule.rule_id, profile)
        held = compiled.decide(profile, NOW)
        assert held == decide(rules, exclusive, profile, NOW)
        tags = [r.tag for r in rules if rng.random() < 0.3]
        expected = deciding_facts(rules, tags, profile, NOW)
        got = compiled.deciding_facts(tags, profile, NOW)
        assert got == expected and list(got) == list(expected)
