"""Rule cases shared by the unit tests (the compiled rules) and the integration tests (SQL compiler on Postgres).

Both run the same table, so the two evaluators cannot drift apart. `rule_case` is parametrized over CASES.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from siyu_segmentation.domain.compiled import CompiledRules
from siyu_segmentation.domain.facts import OrderFact, Profile, TouchFact
from siyu_segmentation.domain.rules import Condition
from siyu_segmentation.domain.tagging import ActiveRule

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def holds(condition: Condition, profile: Profile, now: datetime) -> bool:
    """Whether ``condition`` holds for ``profile`` by the service's Python evaluator (a one-rule compiled set)."""
    return "t" in CompiledRules([ActiveRule("r", 1, "t", None, 0, condition)], {}).decide(profile, now)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


ALICE = Profile(
    person_id="alice",
    values={
        "first_seen_at": ago(200),
        "last_seen_at": ago(3),
        "first_channel": "xiaohongshu",
        "channels": {"xiaohongshu", "tmall"},
        "lead_kinds": {"form"},
        "lead_count": 2,
        "incentive": False,
        "has_phone": True,
        "wecom_status": "friend",
        "wecom_added_at": ago(100),
        "wecom_staff": {"staff-1"},
        "groups": set(),
        "order_count": 3,
        "paid_fen": 48000,
        "refunded_fen": 5000,
        "net_fen": 43000,
        "first_order_at": ago(180),
        "last_order_at": ago(90),
        "avg_order_fen": 16000,
        "mean_interval_days": 45,
        "categories": {"skincare"},
        "touches_received": 2,
        "last_touch_at": ago(10),
    },
    attributes={"skin_type": "dry", "age": 31, "interests": ["yoga", "travel"], "vip": True},
    orders=(
        OrderFact("o1", ago(180), 20000, 0, False, ("skincare",)),
        OrderFact("o2", ago(90), 18000, 5000, False, ("skincare", "makeup")),
        OrderFact("o3", ago(120), 10000, 0, False, ()),
        OrderFact("o4", ago(30), 9000, 9000, True, ("skincare",)),  # fully refunded: voided
    ),
    touches=(
        TouchFact("t1", ago(10), "wecom_1v1", "sent"),
        TouchFact("t2", ago(40), "wecom_group", "sent"),
        TouchFact("t3", ago(5), "wecom_1v1", "failed"),
    ),
)
BOB = Profile(  # a stranger: one lead, nothing else
    person_id="bob",
    values={
        "first_seen_at": ago(1),
        "last_seen_at": ago(1),
        "first_channel": "douyin",
        "channels": {"douyin"},
        "lead_kinds": {"private_message"},
        "lead_count": 1,
        "incentive": True,
        "has_phone": False,
        "wecom_status": "none",
        "wecom_staff": set(),
        "groups": set(),
        "order_count": 0,
        "paid_fen": 0,
        "refunded_fen": 0,
        "net_fen": 0,
        "categories": set(),
        "touches_received": 0,
    },
    attributes={"age": "30-35"},
)


@dataclass(frozen=True)
class Case:
    name: str
    profile: Profile
    when: dict[str, Any]
    expected: bool

    def __str__(self) -> str:
        return self.name


def c(name: str, profile: Profile, when: dict[str, Any], expected: bool) -> Case:
    return Case(name, profile, when, expected)


CASES = [
    # comparisons and edge values
    c("gte-edge", ALICE, {"fact": "order_count", "gte": 3}, True),
    c("gt-edge", ALICE, {"fact": "order_count", "gt": 3}, False),
    c("lt-edge", ALICE, {"fact": "paid_fen", "lt": 48000}, False),
    c("lte-edge", ALICE, {"fact": "paid_fen", "lte": 48000}, True),
    c("eq-float-int", ALICE, {"fact": "avg_order_fen", "eq": 16000.0}, True),
    c("ne", ALICE, {"fact": "first_channel", "ne": "douyin"}, True),
    c("between-inclusive-low", ALICE, {"fact": "net_fen", "between": [43000, 50000]}, True),
    c("between-inclusive-high", ALICE, {"fact": "net_fen", "between": [0, 43000]}, True),
    c("between-out", ALICE, {"fact": "net_fen", "between": [43001, 50000]}, False),
    c("in-number", ALICE, {"fact": "order_count", "in": [1, 3]}, True),
    c("not-in-number", ALICE, {"fact": "order_count", "not_in": [1, 3]}, False),
    c("in-text", BOB, {"fact": "first_channel", "in": ["douyin", "oceanengine"]}, True),
    c("starts-with", ALICE, {"fact": "first_channel", "starts_with": "xiao"}, True),
    c("contains-text", ALICE, {"fact": "first_channel", "contains": "hong"}, True),
    c("bool-eq", BOB, {"fact": "incentive", "eq": True}, True),
    # missing facts are false, except exists: false
    c("missing-number-false", BOB, {"fact": "avg_order_fen", "gte": 0}, False),
    c("missing-number-ne-false", BOB, {"fact": "mean_interval_days", "ne": 1}, False),
    c("missing-not-flips", BOB, {"not": {"fact": "avg_order_fen", "gte": 0}}, True),
    c("exists-false", BOB, {"fact": "last_order_at", "exists": False}, True),
    c("exists-true", ALICE, {"fact": "last_order_at", "exists": True}, True),
    # sets
    c("set-contains", ALICE, {"fact": "channels", "contains": "tmall"}, True),
    c("set-in-overlap", ALICE, {"fact": "channels", "in": ["douyin", "tmall"]}, True),
    c("set-not-in", ALICE, {"fact": "channels", "not_in": ["douyin"]}, True),
    c("set-exists-empty", ALICE, {"fact": "groups", "exists": True}, False),
    # time: relative windows; the boundary is inclusive for within, exclusive for older_than
    c("within-boundary", ALICE, {"fact": "last_order_at", "within": "90d"}, True),
    c("older-than-boundary", ALICE, {"fact": "last_order_at", "older_than": "90d"}, False),
    c("older-than-89", ALICE, {"fact": "last_order_at", "older_than": "89d"}, True),
    c("within-hours", ALICE, {"fact": "last_seen_at", "within": "72h"}, True),
    c("within-weeks", ALICE, {"fact": "last_seen_at", "within": "1w"}, True),
    c("time-absolute", ALICE, {"fact": "first_seen_at", "lt": "2026-06-01T00:00:00+08:00"}, True),
    c("time-missing", BOB, {"fact": "last_order_at", "older_than": "1d"}, False),
    # attributes
    c("attr-eq", ALICE, {"fact": "attr.skin_type", "eq": "dry"}, True),
    c("attr-number", ALICE, {"fact": "attr.age", "between": [30, 35]}, True),
    c("attr-text-not-number", BOB, {"fact": "attr.age", "gte": 18}, False),
    c("attr-bool-is-not-1", ALICE, {"fact": "attr.vip", "eq": 1}, False),
    c("attr-bool", ALICE, {"fact": "attr.vip", "eq": True}, True),
    c("attr-list-contains", ALICE, {"fact": "attr.interests", "contains": "yoga"}, True),
    c("attr-list-ne-false", ALICE, {"fact": "attr.interests", "ne": "yoga"}, False),
    c("attr-in", ALICE, {"fact": "attr.skin_type", "in": ["oily", "dry"]}, True),
    c("attr-missing", BOB, {"fact": "attr.skin_type", "ne": "dry"}, False),
    c("attr-exists", BOB, {"fact": "attr.skin_type", "exists": False}, True),
    c("attr-substring", BOB, {"fact": "attr.age", "contains": "-3"}, True),
    # aggregates over windows (voided orders never count)
    c("count-all", ALICE, {"count": "orders", "eq": 3}, True),
    c("count-window-boundary", ALICE, {"count": "orders", "within": "90d", "eq": 1}, True),
    c("count-window-shorter", ALICE, {"count": "orders", "within": "89d", "eq": 0}, True),
    c("sum-net-window", ALICE, {"sum": "orders.net_fen", "within": "120d", "eq": 23000}, True),
    c("sum-paid", ALICE, {"sum": "orders.amount_fen", "gte": 48000}, True),
    c("sum-empty-is-zero", BOB, {"sum": "orders.amount_fen", "eq": 0}, True),
    c("avg", ALICE, {"avg": "orders.amount_fen", "eq": 16000}, True),
    c("avg-empty-missing", BOB, {"avg": "orders.amount_fen", "lte": 0}, False),
    c("min", ALICE, {"min": "orders.amount_fen", "eq": 10000}, True),
    c("max-refunded", ALICE, {"max": "orders.refunded_fen", "eq": 5000}, True),
    c("count-category", ALICE, {"count": "orders", "category": "skincare", "eq": 2}, True),
    c("count-touches", ALICE, {"count": "touches", "eq": 2}, True),
    c(
        "count-touches-channel-window",
        ALICE,
        {"count": "touches", "channel": "wecom_1v1", "within": "30d", "eq": 1},
        True,
    ),
    # combinators
    c(
        "all-any-not",
        ALICE,
        {
            "all": [
                {"fact": "wecom_status", "eq": "friend"},
                {
                    "any": [
                        {"fact": "order_count", "gt": 10},
                        {"sum": "orders.amount_fen", "within": "365d", "gte": 30000},
                    ]
                },
                {"not": {"fact": "incentive", "eq": True}},
            ]
        },
        True,
    ),
    c(
        "red-packet-seeker",
        BOB,
        {"all": [{"fact": "incentive", "eq": True}, {"count": "orders", "eq": 0}]},
        True,
    ),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rule_case" in metafunc.fixturenames:
        metafunc.parametrize("rule_case", CASES, ids=[case.name for case in CASES])
