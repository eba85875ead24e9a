from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from siyu_attribution.domain.facts import ClaimFact, Evidence, Line, OrderFacts, OverrideFact, SourceFact, TouchFact
from siyu_attribution.domain.plans import DEFAULT_PLAN, PlanBody, PlanVersion, RoleTerms, Tier
from siyu_attribution.replay import OrderHistory, ReplayRows, plan_tables, replay, replay_order

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


# -- the fused path posts exactly what the book posts -------------------------------------------------------------

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
def test_the_fused_replay_writes_exactly_the_rows_of_the_book(
    plan: PlanVersion, batch: tuple[OrderHistory, ...], now: datetime, last_closed: str | None
) -> None:
    fused = replay(tenant="t", histories=batch, plan=plan, now=now, last_closed=last_closed)
    expected = ReplayRows()
    for history in batch:
        replay_order("t", history, plan, now, last_closed, expected)
    assert fused == expected


def test_the_benchmark_shapes_take_the_fused_path() -> None:
    tables = plan_tables(DEFAULT_PLAN)
    assert tables.fused and plan_tables(DEFAULT_PLAN) is tables
