from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from siyu_attribution.adapters.bulk import ENTRY_COLUMNS, SHARE_COLUMNS
from siyu_attribution.domain import book, ledger
from siyu_attribution.domain.commission import targets
from siyu_attribution.domain.facts import ClaimFact, Evidence, Line, OrderFacts, OverrideFact, SourceFact, TouchFact
from siyu_attribution.domain.ledger import Entry
from siyu_attribution.domain.plans import DEFAULT_PLAN, PlanBody, PlanVersion, RoleTerms, Tier
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


# -- over generated orders, evidence and plans: the book's rules hold for what the replay writes ------------------

STAFF = ["s1", "s2", "g1", ""]
MOMENT = st.integers(min_value=-24 * 45, max_value=24 * 45).map(lambda h: PAID + timedelta(hours=h, minutes=h % 7))
BEFORE = st.integers(min_value=0, max_value=24 * 45).map(lambda h: PAID - timedelta(hours=h))
CATEGORY = st.sampled_from(["skincare", "makeup", None])


@st.composite
def role_terms(draw: st.DrawFn) -> RoleTerms:
    rates = {"*": draw(st.integers(0, 10_000))}
    if draw(st.booleans()):
        rates["skincare"] = draw(st.integers(0, 10_000))
    tiers = [
        Tier(min_gmv_fen=draw(st.sampled_from([0, 1, 10_000])), rates_bps={"makeup": draw(st.integers(0, 10_000))})
        for _ in range(draw(st.integers(0, 2)))
    ]
    caps = st.none() | st.integers(0, 3_000)
    return RoleTerms(rates_bps=rates, tiers=tiers, cap_per_order_fen=draw(caps), cap_per_month_fen=draw(caps))


@st.composite
def plans(draw: st.DrawFn) -> PlanVersion:
    models = ["first_claim", "first_touch", "last_touch", "linear", "time_decay", "position_based"]
    roles = {
        role: draw(role_terms())
        for role in draw(st.sets(st.sampled_from(["staff_1v1", "persona_team", "kol", "koc", "group_activator"])))
    }
    body = PlanBody(
        model=draw(st.sampled_from(models)),
        fallback_model=draw(st.sampled_from(models)),
        lookback_days=draw(st.just(45) | st.integers(0, 40)),
        claim_window_days=draw(st.integers(0, 40)),
        touch_kinds=draw(
            st.just(["journey", "staff", "group"])
            | st.lists(st.sampled_from(["journey", "staff", "group"]), unique=True)
        ),
        position_weights=draw(
            st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)).filter(lambda w: sum(w) > 0)
        ),
        return_window_days=draw(st.integers(0, 10)),
        **({"roles": roles} if draw(st.booleans()) else {}),
    )
    return PlanVersion(
        plan_id="p", version=draw(st.integers(1, 3)), effective_from=PAID - timedelta(days=99), body=body
    )


@st.composite
def histories(draw: st.DrawFn, i: int) -> OrderHistory:
    amounts = draw(st.lists(st.integers(0, 100_000), min_size=0, max_size=3))
    lines = tuple(Line(f"l{k}", a, draw(CATEGORY)) for k, a in enumerate(amounts))
    amount = sum(amounts) if draw(st.booleans()) else draw(st.integers(0, 200_000))
    closed = draw(st.none() | MOMENT)
    order = OrderFacts(
        f"o{i}",
        f"T{i}",
        f"p{i}",
        amount,
        PAID,
        lines,
        refunded_fen=draw(st.integers(0, amount)) if draw(st.booleans()) else 0,
        completed_at=draw(st.none() | MOMENT),
        closed_at=closed,
    )
    touches = tuple(
        TouchFact(
            f"t{i}-{k}",
            draw(st.sampled_from(["journey", "staff", "group"])),
            "wecom_1v1",
            draw(BEFORE | MOMENT),
            draw(st.sampled_from(STAFF)) or None,
            draw(st.sampled_from([None, "xiaowan", ""])),
        )
        for k in range(draw(st.integers(0, 6)))
    )
    sources = tuple(
        SourceFact(
            f"l{i}-{k}", draw(st.sampled_from(["kol1", "koc1"])), draw(st.sampled_from(["kol", "koc"])), draw(MOMENT)
        )
        for k in range(draw(st.integers(0, 2)))
    )
    claims = tuple(
        ClaimFact(
            f"c{i}-{k}",
            draw(st.sampled_from([f"T{i}", "other"])),
            draw(st.sampled_from(["s1", "s2", "g1"])),
            draw(st.sampled_from(["staff_1v1", "group_activator"])),
            draw(MOMENT),
            draw(st.integers(0, 2)),
        )
        for k in range(draw(st.integers(0, 3)))
    )
    overrides = (
        (OverrideFact(f"x{i}", f"T{i}", "s3", "staff_1v1", "audit", draw(MOMENT)),)
        if draw(st.integers(0, 9)) == 0
        else ()
    )
    completed = draw(st.none() | MOMENT)
    return OrderHistory(order, Evidence(touches, sources, claims, overrides), completed)


@settings(max_examples=400, deadline=None)
@given(
    plan=plans(),
    batch=st.integers(1, 4).flatmap(lambda n: st.tuples(*(histories(i) for i in range(n)))),
    now=MOMENT,
    last_closed=st.sampled_from([None, "2026-09", "2026-10", "2026-11"]),
)
def test_the_replay_writes_the_books_ledger(
    plan: PlanVersion, batch: tuple[OrderHistory, ...], now: datetime, last_closed: str | None
) -> None:
    rows = replay(tenant="t", histories=batch, plan=plan, now=now, last_closed=last_closed)
    assert replay(tenant="t", histories=batch, plan=plan, now=now, last_closed=last_closed) == rows
    assert len(rows.orders) == len(rows.attributions) == len(batch)
    entries = [Entry(*row) for row in rows.entries]
    assert all(total == 0 for total in ledger.transaction_sums(entries).values())
    assert len({e.entry_id for e in entries}) == len(entries)
    assert all(last_closed is None or e.period > last_closed for e in entries)
    for history, order_row, attribution_row in zip(batch, rows.orders, rows.attributions, strict=True):
        order = history.order
        mine = [e for e in entries if e.order_id == order.order_id]
        record = book.reattribute(
            tenant="t",
            order=order,
            evidence=history.evidence,
            plan=plan,
            existing=(),
            current=None,
            settled=False,
            cause="paid",
            at=order.paid_at,
            last_closed=last_closed,
        ).attribution
        assert record is not None and attribution_row[1] == order_row[12] == record.attribution_id
        shares = [row[4:] for row in rows.shares if row[1] == order.order_id]
        assert shares == [tuple(s) for s in record.shares]
        # What the order owes each payee is what the book's targets say; settled orders hold nothing any more.
        owed = {k: v for k, v in ledger.owed(mine).items() if v}
        assert owed == {k: v for k, v in targets(order, record.shares).items() if v}
        if order_row[14] is not None:
            assert order_row[14] == order_row[13] <= now
            assert not ledger.held_balances(mine)
        else:
            assert not any(e.account.startswith("payable:") for e in mine)


def test_the_books_entries_and_shares_are_the_table_rows() -> None:
    """Entries are written as the book makes them: their fields are the table's columns, in order."""
    assert Entry._fields == ENTRY_COLUMNS
    assert SHARE_COLUMNS[4:] == ("payee_id", "payee_role", "kind", "basis", "base_fen", "gross_fen")
