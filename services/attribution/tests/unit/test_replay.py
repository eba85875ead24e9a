from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from siyu_attribution.domain.facts import ClaimFact, Evidence, OrderFacts, TouchFact
from siyu_attribution.domain.plans import DEFAULT_PLAN
from siyu_attribution.replay import OrderHistory, replay

PAID = datetime(2026, 10, 3, tzinfo=UTC)


def history(i: int, completed: bool) -> OrderHistory:
    order = OrderFacts(f"o{i}", f"T{i}", f"p{i}", 10_000 + i, PAID)
    evidence = Evidence(
        touches=(TouchFact(f"t{i}", "staff", "wecom_1v1", PAID - timedelta(days=1), "s1"),),
        claims=(ClaimFact(f"c{i}", f"T{i}", "s2", "staff_1v1", PAID),) if i % 2 else (),
    )
    return OrderHistory(order, evidence, PAID + timedelta(days=1) if completed else None)


def test_replay_posts_balanced_transactions_and_settles_only_past_the_holding_period() -> None:
    rows = replay(
        tenant="t",
        histories=[history(i, completed=i < 5) for i in range(10)],
        plan=DEFAULT_PLAN,
        now=PAID + timedelta(days=30),
        last_closed=None,
    )
    per_txn: dict[str, int] = defaultdict(int)
    for entry in rows.entries:
        per_txn[entry[2]] += entry[5]
    assert set(per_txn.values()) == {0}
    settled = {row[1] for row in rows.orders if row[14] is not None}
    assert settled == {f"o{i}" for i in range(5)}
    payable = {entry[6] for entry in rows.entries if entry[4].startswith("payable:")}
    assert payable == settled
    again = replay(
        tenant="t",
        histories=[history(i, completed=i < 5) for i in range(10)],
        plan=DEFAULT_PLAN,
        now=PAID + timedelta(days=30),
        last_closed=None,
    )
    assert again == rows
