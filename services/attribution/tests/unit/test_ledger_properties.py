"""Property-based tests of the ledger: balance, exact splits, full refunds to zero, replay gives the same ledger."""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from siyu_attribution.domain import ledger
from siyu_attribution.domain.attribution import attribute
from siyu_attribution.domain.commission import shares
from siyu_attribution.domain.facts import ClaimFact, Evidence, Line, OrderFacts, OverrideFact, SourceFact, TouchFact
from siyu_attribution.domain.plans import PlanBody, PlanVersion

from .book_run import BookRun

T0 = datetime(2026, 10, 3, 4, tzinfo=UTC)
STAFF = ["s1", "s2", "s3", "g1"]


@dataclass
class Order(BookRun):
    """One order run through the pure book, the way the service runs it over Postgres."""

    refunds_seen: set[str] = field(default_factory=set)

    def apply(self, op: tuple[str, ...]) -> None:
        kind = op[0]
        at = self.order.paid_at + timedelta(hours=int(op[-1]))
        if kind in ("paid", "claim", "override", "touch"):
            if kind == "claim":
                self.claim(ClaimFact(f"c{op[1]}{op[-1]}", self.order.order_no, op[1], "staff_1v1", at))
            if kind == "override":
                self.override(OverrideFact(f"x{op[-1]}", self.order.order_no, op[1], "staff_1v1", "audit", at))
            self.reattribute(":".join(op), at)
        elif kind == "refund" and self.current is not None and op[1] not in self.refunds_seen:
            # A refund is applied once per refund id (the service keeps them in a table keyed by it).
            self.refunds_seen.add(op[1])
            self.refund(int(op[2]), ":".join(op), at)
        elif kind == "close_order" and self.current is not None and not self.settled:
            self.close_order(":".join(op), at)
        elif kind == "settle" and self.current is not None and not self.settled:
            self.settle(at)
        elif kind == "close_period":
            self.close_period(at)


amounts = st.integers(min_value=1, max_value=5_000_000)
hours = st.integers(min_value=0, max_value=24 * 60).map(str)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("claim"), st.sampled_from(STAFF), hours),
        st.tuples(st.just("override"), st.sampled_from(STAFF), hours),
        st.tuples(st.just("refund"), amounts.map(str), hours),
        st.tuples(st.just("settle"), hours),
        st.tuples(st.just("close_period"), hours),
        st.tuples(st.just("close_order"), hours),
    ),
    max_size=12,
)


@st.composite
def orders(draw: st.DrawFn) -> Order:
    line_amounts = draw(st.lists(amounts, min_size=1, max_size=4))
    lines = tuple(
        Line(f"l{i}", a, draw(st.sampled_from(["skincare", "makeup", None]))) for i, a in enumerate(line_amounts)
    )
    facts = OrderFacts("o1", "T1", "p1", sum(line_amounts), T0, lines)
    touches = tuple(
        TouchFact(
            f"t{i}", draw(st.sampled_from(["staff", "group", "journey"])), "wecom_1v1", T0 - timedelta(hours=h), s, p
        )
        for i, (h, s, p) in enumerate(
            draw(
                st.lists(
                    st.tuples(
                        st.integers(0, 24 * 40), st.sampled_from([None, *STAFF]), st.sampled_from([None, "xiaowan"])
                    ),
                    max_size=6,
                )
            )
        )
    )
    sources = (SourceFact("lead1", "kol1", "kol", T0 - timedelta(days=1)),) if draw(st.booleans()) else ()
    model = draw(
        st.sampled_from(["first_claim", "first_touch", "last_touch", "linear", "time_decay", "position_based"])
    )
    plan = PlanVersion(
        plan_id="p",
        version=1,
        effective_from=T0 - timedelta(days=99),
        body=PlanBody(model=model, touch_kinds=["journey", "staff", "group"]),
    )
    return Order(order=facts, evidence=Evidence(touches=touches, sources=sources), plan=plan)


def numbered(script: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Refunds get their refund id (unique, as the platforms give them)."""
    return [(op[0], f"r{i}", op[1], op[2]) if op[0] == "refund" else op for i, op in enumerate(script)]


def run(order: Order, script: list[tuple[str, ...]]) -> Order:
    fresh = dataclasses.replace(order, entries=[], refunds_seen=set())
    for op in [("paid", "0"), *script]:
        fresh.apply(op)
    return fresh


@settings(max_examples=200, deadline=None)
@given(order=orders(), script=ops)
def test_every_transaction_balances_to_zero_and_no_payee_is_owed_less_than_zero(
    order: Order, script: list[tuple[str, ...]]
) -> None:
    done = run(order, numbered(script))
    assert all(total == 0 for total in ledger.transaction_sums(done.entries).values())
    assert sum(e.amount_fen for e in done.entries) == 0
    assert all(amount >= 0 for amount in ledger.owed(done.entries).values())
    assert len({e.entry_id for e in done.entries}) == len(done.entries)
    for entry in done.entries:
        assert entry.order_id == "o1" and entry.plan_id == "p" and entry.plan_version == 1 and entry.attribution_id
        assert entry.rule


@settings(max_examples=200, deadline=None)
@given(order=orders())
def test_splits_sum_to_the_order(order: Order) -> None:
    plan = order.plan.body
    decision = attribute(order.order, order.evidence, plan)
    money = shares(order.order, decision, plan)
    for pool in ("seller", "source"):
        credits = [c for c in decision.credits if c.kind == "commission" and c.pool == pool]
        wanted = {(c.payee_id, c.role, c.basis) for c in credits}
        bases = [s.base_fen for s in money if (s.payee_id, s.role, s.basis) in wanted]
        if credits and sum(c.weight for c in credits) == 1:
            assert sum(bases) == order.order.amount_fen


@settings(max_examples=200, deadline=None)
@given(order=orders(), script=ops)
def test_a_full_refund_brings_every_payee_to_zero(order: Order, script: list[tuple[str, ...]]) -> None:
    done = run(order, numbered([*script, ("refund", str(10**12), str(24 * 61))]))
    assert all(amount == 0 for amount in ledger.owed(done.entries).values())
    per_account: dict[str, int] = defaultdict(int)
    for entry in done.entries:
        per_account[entry.account] += entry.amount_fen
    assert all(total == 0 for total in per_account.values())


@settings(max_examples=200, deadline=None)
@given(order=orders(), script=ops)
def test_replaying_all_events_yields_the_identical_ledger(order: Order, script: list[tuple[str, ...]]) -> None:
    first = run(order, script)
    again = run(order, script)
    assert first.entries == again.entries
    # A redelivered event (each op twice) changes nothing: reconcile posts only differences.
    doubled = run(order, [op for op in script for _ in (0, 1) if op[0] not in ("refund",)])
    single = run(order, [op for op in script if op[0] != "refund"])
    assert doubled.entries == single.entries


@settings(max_examples=200, deadline=None)
@given(order=orders(), script=ops)
def test_closed_periods_never_receive_entries(order: Order, script: list[tuple[str, ...]]) -> None:
    fresh = dataclasses.replace(order, entries=[], refunds_seen=set())
    fresh.apply(("paid", "0"))
    for op in numbered(script):
        closed_before = fresh.last_closed
        count = len(fresh.entries)
        fresh.apply(op)
        if closed_before is not None:
            assert all(e.period > closed_before for e in fresh.entries[count:])


@given(parts=st.lists(st.text(max_size=40), min_size=1, max_size=6))
def test_stable_ids_are_the_name_based_uuids_of_their_parts(parts: list[str]) -> None:
    """Ids already stored stay what a replay derives: the text of ``uuid.uuid5`` in the service's namespace."""
    assert ledger.stable_id(*parts) == str(uuid.uuid5(ledger._NAMESPACE, "/".join(parts)))
