"""Order and touch aggregates derived from a person's fact rows."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from siyu_segmentation.domain.aggregates import ORDER_COLUMNS, order_aggregates, touch_aggregates
from siyu_segmentation.domain.facts import OrderFact, TouchFact

from ..conftest import NOW, ago


def test_money_counts_every_order_the_rest_only_live_ones() -> None:
    orders = [
        OrderFact("o1", ago(30), 12000, 0, False, ("skincare",)),
        OrderFact("o2", ago(20), 25000, 25000, True, ("makeup",)),  # fully refunded: voided
        OrderFact("o3", ago(10), 40001, 1, False, ("skincare", "body")),
    ]
    got = order_aggregates(orders)
    assert set(got) == set(ORDER_COLUMNS)
    assert got == {
        "order_count": 2,
        "paid_fen": 77001,
        "refunded_fen": 25001,
        "net_fen": 52000,
        "first_order_at": ago(30),
        "last_order_at": ago(10),
        "avg_order_fen": Decimal("26000.5"),
        "mean_interval_days": Decimal(20),
        "categories": ["body", "skincare"],
    }


def test_no_live_order_leaves_the_times_and_averages_missing() -> None:
    assert order_aggregates([]) == {
        "order_count": 0,
        "paid_fen": 0,
        "refunded_fen": 0,
        "net_fen": 0,
        "first_order_at": None,
        "last_order_at": None,
        "avg_order_fen": None,
        "mean_interval_days": None,
        "categories": [],
    }
    one = order_aggregates([OrderFact("o1", NOW, 100)])
    assert (one["avg_order_fen"], one["mean_interval_days"]) == (Decimal(100), None)


def test_non_terminating_values_are_rounded_to_a_fixed_number_of_digits() -> None:
    orders = [OrderFact(f"o{i}", NOW - timedelta(days=i, seconds=i), fen) for i, fen in enumerate((1, 1, 2))]
    got = order_aggregates(orders)
    assert got["avg_order_fen"] == Decimal("1.333333333333333333333333333")
    assert got["mean_interval_days"] == Decimal(2 * 86400 + 2) / Decimal(86400) / Decimal(2)


def test_touches_count_when_sent() -> None:
    touches = [
        TouchFact("t1", ago(5), "sms", "sent"),
        TouchFact("t2", ago(1), "sms", "failed"),
        TouchFact("t3", ago(3), "wecom_1v1", "sent"),
    ]
    assert touch_aggregates(touches) == {"touches_received": 2, "last_touch_at": ago(3)}
    assert touch_aggregates([]) == {"touches_received": 0, "last_touch_at": None}
