"""An oracle for the book that does not ask the book: invariants any correct book satisfies, whatever its fast paths.

The replay test compares the replay with ``book.reattribute``; these compare the book with the rules themselves
(balance, exact splits, the plan's rates and caps, proportional refunds, idempotence, a claim moving money), worked
out here independently, so a wrong rule in the single-credit pricing, ``_sole_touch``, ``settle`` or the
``period_of`` cache fails here. ``test_golden_orders`` holds the book to fen figures written by hand from the plan.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from siyu_attribution.domain import book, ledger
from siyu_attribution.domain.attribution import attribute
from siyu_attribution.domain.commission import PayeeKey, shares
from siyu_attribution.domain.facts import ClaimFact, Evidence, Line, OrderFacts, OverrideFact, SourceFact, TouchFact
from siyu_attribution.domain.ledger import Entry
from siyu_attribution.domain.periods import period_of, posting_period
from siyu_attribution.domain.plans import PlanBody, PlanVersion, RoleTerms, Tier

from .book_run import BookRun

PAID = datetime(2026, 10, 10, 4, tzinfo=UTC)  # 12:00 in Shanghai
STAFF = ["s1", "s2", "s3", "g1"]
ROLES = ["staff_1v1", "persona_team", "kol", "koc", "group_activator"]
MODELS = ["first_claim", "first_touch", "last_touch", "linear", "time_decay", "position_based"]
CATEGORIES = ["skincare", "makeup", None]


# -- independent rules: what the README and the plans' docstrings say, computed here --------------------------------


def rate_of(terms: RoleTerms, category: str | None, month_gmv: int) -> int:
    """The role's rate: tiers replace the rates from their threshold on, each over the ones below (category by
    category); a category without a rate of its own, or none, takes `*`, and no `*` is zero."""
    rates = dict(terms.rates_bps)
    for tier in sorted(terms.tiers, key=lambda t: t.min_gmv_fen):
        if month_gmv >= tier.min_gmv_fen:
            rates.update(tier.rates_bps)
    if category is not None and category in rates:
        return rates[category]
    return rates.get("*", 0)


def terms_of(plan: PlanBody, role: str) -> RoleTerms:
    for named, terms in plan.roles.items():
        if named == role:
            return terms
    return RoleTerms()  # a role the plan does not name is unpaid


def capped(terms: RoleTerms, gross: int, paid_this_month: int) -> int:
    if terms.cap_per_order_fen is not None:
        gross = min(gross, terms.cap_per_order_fen)
    if terms.cap_per_month_fen is not None:
        gross = max(0, min(gross, terms.cap_per_month_fen - paid_this_month))
    return gross


def payee_of(touch: TouchFact) -> PayeeKey | None:
    if touch.kind == "journey" and touch.persona:
        return (f"persona:{touch.persona}", "persona_team")
    if touch.staff_id:
        return (touch.staff_id, "staff_1v1")
    return None


def expected_seller(order: OrderFacts, evidence: Evidence, plan: PlanBody) -> PayeeKey | str | None:
    """Who the seller pool pays in full under a single-credit rule; ``"spread"`` when a spreading model decides."""
    overrides = [o for o in evidence.overrides if o.order_no == order.order_no]
    if overrides:
        latest = max(overrides, key=lambda o: (o.decided_at, o.seq, o.override_id))
        return (latest.payee_id, latest.payee_role)
    model = plan.model
    if model == "first_claim":
        deadline = order.paid_at + timedelta(days=plan.claim_window_days)
        valid = [
            c
            for c in evidence.claims
            if c.order_no == order.order_no and c.role == "staff_1v1" and c.claimed_at <= deadline
        ]
        if valid:
            return (min(valid, key=lambda c: (c.claimed_at, c.seq, c.claim_id)).staff_id, "staff_1v1")
        model = plan.fallback_model
    since = order.paid_at - timedelta(days=plan.lookback_days)
    touches = sorted(
        (
            t
            for t in evidence.touches
            if since <= t.occurred_at <= order.paid_at and t.kind != "group" and t.kind in plan.touch_kinds
        ),
        key=lambda t: (t.occurred_at, t.touch_id),
    )
    if not touches:
        return None
    if model in ("last_touch", "first_claim"):
        return payee_of(touches[-1])
    if model == "first_touch":
        return payee_of(touches[0])
    if model == "position_based" and len(touches) == 1:
        return payee_of(touches[0])
    return "spread"


def expected_source(order: OrderFacts, evidence: Evidence) -> PayeeKey | None:
    before = [s for s in evidence.sources if s.occurred_at <= order.paid_at]
    if not before:
        return None
    first = min(before, key=lambda s: (s.occurred_at, s.lead_id))
    return (first.partner_id, first.account_kind)


def whole_order_gross(order: OrderFacts, terms: RoleTerms, month_gmv: int) -> int:
    """Commission of one credit earning the whole order: every priced line at its category's rate, rounded down."""
    lines = order.lines if order.lines and sum(x.amount_fen for x in order.lines) == order.amount_fen else ()
    if not lines:
        return order.amount_fen * rate_of(terms, None, month_gmv) // 10_000
    return sum(x.amount_fen * rate_of(terms, x.category, month_gmv) // 10_000 for x in lines)


# -- generated facts and plans ---------------------------------------------------------------------------------------

HOURS_BEFORE = st.integers(0, 24 * 45)


@st.composite
def role_terms(draw: st.DrawFn) -> RoleTerms:
    rates = {"*": draw(st.integers(0, 10_000))} if draw(st.integers(0, 4)) else {}
    if draw(st.booleans()):
        rates["skincare"] = draw(st.integers(0, 10_000))
    tiers = [
        Tier(
            min_gmv_fen=draw(st.sampled_from([0, 1, 10_000, 50_000])),
            rates_bps=draw(st.dictionaries(st.sampled_from(["*", "makeup", "skincare"]), st.integers(0, 10_000))),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    caps = st.none() | st.integers(0, 5_000)
    return RoleTerms(rates_bps=rates, tiers=tiers, cap_per_order_fen=draw(caps), cap_per_month_fen=draw(caps))


@st.composite
def plan_bodies(draw: st.DrawFn) -> PlanBody:
    extra = {}
    if draw(st.booleans()):  # group activators given a rate too: they must still never be paid
        extra["roles"] = {role: draw(role_terms()) for role in draw(st.sets(st.sampled_from(ROLES)))}
    return PlanBody(
        model=draw(st.sampled_from(MODELS)),
        fallback_model=draw(st.sampled_from(MODELS)),
        lookback_days=draw(st.integers(0, 40)),
        claim_window_days=draw(st.integers(0, 40)),
        touch_kinds=draw(st.lists(st.sampled_from(["journey", "staff", "group"]), unique=True)),
        position_weights=draw(
            st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)).filter(lambda w: sum(w) > 0)
        ),
        **extra,
    )


@st.composite
def order_facts(draw: st.DrawFn) -> OrderFacts:
    amounts = draw(st.lists(st.integers(0, 2_000_000), max_size=4))
    lines = tuple(Line(f"l{k}", a, draw(st.sampled_from(CATEGORIES))) for k, a in enumerate(amounts))
    total = sum(amounts) if draw(st.integers(0, 3)) else draw(st.integers(0, 2_000_000))
    return OrderFacts("o1", "T1", "p1", total, PAID, lines)


def touch(draw: st.DrawFn, k: int) -> TouchFact:
    return TouchFact(
        f"t{k}",
        draw(st.sampled_from(["journey", "staff", "group"])),
        "wecom_1v1",
        PAID - timedelta(hours=draw(HOURS_BEFORE)),
        draw(st.sampled_from([None, *STAFF])),
        draw(st.sampled_from([None, "xiaowan", "amei"])),
    )


@st.composite
def evidence(draw: st.DrawFn) -> Evidence:
    touches = tuple(touch(draw, k) for k in range(draw(st.integers(0, 6))))
    sources = tuple(
        SourceFact(
            f"lead{k}",
            draw(st.sampled_from(["kolA", "kocB"])),
            draw(st.sampled_from(["kol", "koc"])),
            PAID + timedelta(hours=draw(st.integers(-24 * 10, 24))),
        )
        for k in range(draw(st.integers(0, 2)))
    )
    claims = tuple(
        ClaimFact(
            f"c{k}",
            draw(st.sampled_from(["T1", "T9"])),
            draw(st.sampled_from(STAFF)),
            draw(st.sampled_from(["staff_1v1", "group_activator"])),
            PAID + timedelta(hours=draw(st.integers(-24, 24 * 45))),
            draw(st.integers(0, 2)),
        )
        for k in range(draw(st.integers(0, 3)))
    )
    overrides = (
        (OverrideFact("x1", "T1", "s3", "staff_1v1", "audit", PAID + timedelta(hours=5)),)
        if draw(st.integers(0, 7)) == 0
        else ()
    )
    return Evidence(touches, sources, claims, overrides)


MONTH = st.dictionaries(st.sampled_from([*STAFF, "kolA", "kocB", "persona:xiaowan"]), st.integers(0, 200_000))


# -- shares -----------------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(order=order_facts(), facts=evidence(), plan=plan_bodies(), month_gmv=MONTH, month_commission=MONTH)
def test_shares_follow_the_plan(
    order: OrderFacts, facts: Evidence, plan: PlanBody, month_gmv: dict[str, int], month_commission: dict[str, int]
) -> None:
    decision = attribute(order, facts, plan)
    money = shares(order, decision, plan, month_gmv=month_gmv, month_commission=month_commission)
    assert len(money) == len(decision.credits)
    for share in money:
        assert share.base_fen >= 0 and share.gross_fen >= 0
        if share.kind == "activity":  # activity credit never carries money
            assert share.role == "group_activator" and share.base_fen == share.gross_fen == 0
        else:
            assert share.role != "group_activator"
            terms = terms_of(plan, share.role)
            if terms.cap_per_order_fen is not None:
                assert share.gross_fen <= terms.cap_per_order_fen
            if terms.cap_per_month_fen is not None:
                assert share.gross_fen <= max(0, terms.cap_per_month_fen - month_commission.get(share.payee_id, 0))
            top = max([*terms.rates_bps.values(), *(r for t in terms.tiers for r in t.rates_bps.values()), 0])
            assert share.gross_fen <= share.base_fen * top // 10_000
    seller = [s for s in money if s.kind == "commission" and s.basis.split(":")[0] != "source"]
    source = [s for s in money if s.kind == "commission" and s.basis.startswith("source:")]
    # Each pool's bases: exactly the order when its credits take the whole of it, never more.
    for pool in (seller, source):
        assert sum(s.base_fen for s in pool) <= order.amount_fen
    # Who is paid, and how much, when one credit takes a pool whole (the book's single-credit path).
    for want, pool in ((expected_seller(order, facts, plan), seller), (expected_source(order, facts), source)):
        if want == "spread":
            credits = [c for c in decision.credits if c.kind == "commission" and c.pool == "seller"]
            if sum(c.weight for c in credits) == 1:
                assert sum(s.base_fen for s in pool) == order.amount_fen
            lines = len(order.priced_lines)
            for share, credit in zip(pool, credits, strict=True):  # each base within a fen per line of its quota
                assert abs(share.base_fen - Fraction(order.amount_fen) * credit.weight) < lines
            continue
        if want is None:
            assert pool == []
            continue
        assert [s.key for s in pool] == [want]
        (share,) = pool
        terms = terms_of(plan, share.role)
        gross = whole_order_gross(order, terms, month_gmv.get(share.payee_id, 0))
        assert share.base_fen == order.amount_fen
        assert share.gross_fen == capped(terms, gross, month_commission.get(share.payee_id, 0))


# -- the ledger over a history of late facts, refunds, settlement and closes ------------------------------------------


class History(BookRun):
    def reattribute(self, cause: str, at: datetime) -> book.Outcome:
        outcome = super().reattribute(cause, at)
        # The same facts again, under another cause: no new record, no new entry.
        assert self.decide(f"{cause}:again", at + timedelta(minutes=1)) == (None, [])
        return outcome

    def apply(self, step: int, op: tuple[str, ...]) -> None:
        kind, at = op[0], PAID + timedelta(hours=step * 7)
        cause = f"{kind}:{step}"
        if kind == "paid":
            self.reattribute(cause, PAID)
        elif kind == "claim":
            self.claim(ClaimFact(f"c{step}", "T1", op[1], op[2], at))  # type: ignore[arg-type]
            self.reattribute(cause, at)
        elif kind == "touch":  # a late touch, dated before the payment
            self.touch(TouchFact(f"late{step}", op[1], "wecom_1v1", PAID - timedelta(hours=int(op[3])), op[2]))  # type: ignore[arg-type]
            self.reattribute(cause, at)
        elif kind == "refund" and self.current is not None:
            self.refund(int(op[1]), cause, at)
        elif kind == "close_order" and self.current is not None and not self.settled:
            self.close_order(cause, at)
        elif kind == "settle" and self.current is not None and not self.settled:
            self.settle(at)
        elif kind == "close_period":
            self.close_period(at)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("claim"), st.sampled_from(STAFF), st.sampled_from(["staff_1v1", "group_activator"])),
        st.tuples(
            st.just("touch"),
            st.sampled_from(["journey", "staff", "group"]),
            st.sampled_from(STAFF),
            HOURS_BEFORE.map(str),
        ),
        st.tuples(st.just("refund"), st.integers(1, 2_000_000).map(str)),
        st.tuples(st.just("settle")),
        st.tuples(st.just("close_period")),
        st.tuples(st.just("close_order")),
    ),
    max_size=10,
)


def check_ledger(history: History) -> None:
    entries = history.entries
    assert len({e.entry_id for e in entries}) == len(entries)
    by_txn: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        assert entry.amount_fen != 0  # only differences are posted: never a zero leg
        assert entry.payee_role != "group_activator"
        assert entry.account in (ledger.EXPENSE, ledger.held(entry.payee_id), ledger.payable(entry.payee_id))
        by_txn[entry.txn_id].append(entry)
    for legs in by_txn.values():
        assert len(legs) == 2 and sum(e.amount_fen for e in legs) == 0
    owed = ledger.owed(entries)
    assert all(amount >= 0 for amount in owed.values())
    if history.settled:  # nothing held any more: what is owed is payable
        assert not ledger.held_balances(entries)
    record = history.current
    if record is None:
        assert not entries
        return
    # Proportional to what is still commissionable: the total rounded down, each payee within rounding of its part.
    paid = [s for s in record.shares if s.kind == "commission"]
    gross: dict[PayeeKey, int] = defaultdict(int)
    for share in paid:
        gross[share.key] += share.gross_fen
    amount, left = history.order.amount_fen, history.order.commissionable_fen
    total = sum(gross.values()) * left // amount if amount else 0
    assert sum(owed.values()) == total
    assert set(k for k, v in owed.items() if v) <= set(gross)
    for key, g in gross.items():
        assert 0 <= owed.get(key, 0) <= g
        if amount:  # largest remainder over the exact parts: each the floor of its part, or one fen more
            assert g * left // amount <= owed.get(key, 0) <= -(-g * left // amount)


@settings(max_examples=300, deadline=None)
@given(order=order_facts(), facts=evidence(), body=plan_bodies(), script=OPS)
def test_the_ledger_balances_and_follows_the_refunds(
    order: OrderFacts, facts: Evidence, body: PlanBody, script: list[tuple[str, ...]]
) -> None:
    plan = PlanVersion(plan_id="p", version=1, effective_from=PAID - timedelta(days=99), body=body)
    history = History(order, facts, plan)
    for step, op in enumerate([("paid",), *script]):
        before = history.owed()
        history.apply(step, op)
        check_ledger(history)
        if op[0] in ("refund", "close_order"):
            # A refund reverses: the total owed never grows. A payee may get back one fen (largest remainder's
            # Alabama paradox: a smaller total can move a rounding fen to another payee); no more.
            after = history.owed()
            assert sum(after.values()) <= sum(before.values())
            assert all(after.get(key, 0) <= amount + 1 for key, amount in before.items())
            assert set(after) <= set(before)
    # Refunding the rest brings every payee, and every account, to zero.
    history.apply(len(script) + 1, ("refund", str(10**12)))
    check_ledger(history)
    per_account: dict[str, int] = defaultdict(int)
    for entry in history.entries:
        per_account[entry.account] += entry.amount_fen
    assert set(per_account.values()) <= {0}
    # The same facts in the same order give the same ledger, id for id.
    again = History(order, facts, plan)
    for step, op in enumerate([("paid",), *script, ("refund", str(10**12))]):
        again.apply(step, op)
    assert again.entries == history.entries


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(1, 5_000_000),
    rate=st.integers(0, 10_000),
    cap=st.none() | st.integers(0, 100_000),
    old=st.sampled_from(["s1", None]),
    kol=st.booleans(),
    refund=st.integers(0, 5_000_000),
    settle=st.booleans(),
)
def test_a_new_claim_moves_the_money_to_the_claimant_total_unchanged(
    amount: int, rate: int, cap: int | None, old: str | None, kol: bool, refund: int, settle: bool
) -> None:
    terms = RoleTerms(rates_bps={"*": rate}, cap_per_order_fen=cap)
    body = PlanBody(model="first_claim", roles={"staff_1v1": terms, "kol": RoleTerms(rates_bps={"*": 1000})})
    plan = PlanVersion(plan_id="p", version=1, effective_from=PAID - timedelta(days=99), body=body)
    touches = (TouchFact("t1", "staff", "wecom_1v1", PAID - timedelta(days=1), old),)
    sources = (SourceFact("lead1", "kolA", "kol", PAID - timedelta(days=2)),) if kol else ()
    history = History(OrderFacts("o1", "T1", "p1", amount, PAID), Evidence(touches, sources), plan)
    script = [("paid",), ("refund", str(refund)), *([("settle",)] if settle else [])]
    for step, op in enumerate(script):
        history.apply(step, op)
    before = history.owed()
    expense = sum(e.amount_fen for e in history.entries if e.account == ledger.EXPENSE)
    history.apply(len(script), ("claim", "s2", "staff_1v1"))
    check_ledger(history)
    after = history.owed()
    moved = before.pop(("s1", "staff_1v1"), 0)
    gained = after.pop(("s2", "staff_1v1"), 0)
    added = sum(e.amount_fen for e in history.entries if e.account == ledger.EXPENSE) - expense
    if old is not None:  # from the touch's staff to the claimant, the total unchanged, the KOL untouched
        assert gained == moved and added == 0 and after == before
    else:  # the brand's own automation earned nothing: the claimant's commission is new expense
        gross = amount * rate // 10_000 if cap is None else min(cap, amount * rate // 10_000)
        left = max(0, amount - refund)
        assert gross * left // amount <= gained <= -(-gross * left // amount)
        if refund == 0 or not kol:  # (after a refund the KOL may gain or lose the fen lost to rounding)
            assert after == before and added == gained
    if settle and moved:  # after settlement the change goes straight to payable
        new = [e for e in history.entries if e.payee_id in ("s1", "s2") and e.kind != "settlement"][-4:]
        assert {e.account for e in new} == {ledger.EXPENSE, "payable:s1", "payable:s2"}


ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5)), ZoneInfo("Asia/Shanghai"), ZoneInfo("UTC")]


@settings(max_examples=200, deadline=None)
@given(
    moments=st.lists(
        st.tuples(st.integers(-24 * 80, 24 * 80), st.integers(0, 59), st.sampled_from(ZONES)), min_size=1, max_size=30
    ),
    closed=st.none() | st.sampled_from(["2026-08", "2026-09", "2026-10", "2026-11"]),
)
def test_period_of_is_the_shanghai_month_whatever_it_remembers(
    moments: list[tuple[int, int, ZoneInfo]], closed: str | None
) -> None:
    for hours, minutes, zone in moments:
        moment = (PAID + timedelta(hours=hours, minutes=minutes)).astimezone(zone)
        month = moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
        assert period_of(moment) == month
        after_close = month
        if closed is not None and month <= closed:  # carried over to the first open period
            y, m = int(closed[:4]), int(closed[5:])
            after_close = f"{y + m // 12:04d}-{m % 12 + 1:02d}"
        assert posting_period(moment, last_closed=closed) == after_close


# -- golden: figures worked out by hand from the plan ----------------------------------------------------------------

GOLDEN = PlanBody(
    model="first_claim",
    fallback_model="last_touch",
    roles={
        # 5 %, skincare 8 %; from 100,000 fen of the month's attributed GMV on, 7 % for the rest (skincare stays 8 %);
        # at most 50 yuan an order and 200 yuan a month.
        "staff_1v1": RoleTerms(
            rates_bps={"*": 500, "skincare": 800},
            tiers=[Tier(min_gmv_fen=100_000, rates_bps={"*": 700})],
            cap_per_order_fen=5_000,
            cap_per_month_fen=20_000,
        ),
        "persona_team": RoleTerms(rates_bps={"*": 200}),
        "kol": RoleTerms(rates_bps={"*": 1000}),
        "koc": RoleTerms(rates_bps={"*": 500}),
        "group_activator": RoleTerms(rates_bps={"*": 3000}),  # a rate, but activity credit is never paid
    },
)
DAY = timedelta(days=1)


def staff_touch(staff: str, ago: timedelta = DAY, kind: str = "staff", persona: str | None = None) -> TouchFact:
    return TouchFact(f"t-{staff}-{kind}", kind, "wecom_1v1", PAID - ago, staff, persona)  # type: ignore[arg-type]


def claim(staff: str, role: str = "staff_1v1", after: timedelta = timedelta(hours=1)) -> ClaimFact:
    return ClaimFact(f"c-{staff}", "T1", staff, role, PAID + after)  # type: ignore[arg-type]


def kol(partner: str = "kolA", kind: str = "kol") -> SourceFact:
    return SourceFact(f"lead-{partner}", partner, kind, PAID - 2 * DAY)  # type: ignore[arg-type]


# (name, lines or amount, evidence, month GMV, month commission, refunds, expected fen owed per payee at the end)
CASES: list[tuple[str, tuple[Line, ...] | int, Evidence, dict[str, int], dict[str, int], list[int], dict[str, int]]] = [
    # no claim: last touch; 12,345 x 5 % = 617.25
    ("touch only", 12_345, Evidence(touches=(staff_touch("s1"),)), {}, {}, [], {"s1": 617}),
    # the claim beats the touch; skincare 10,000 x 8 % = 800, makeup 5,001 x 5 % = 250.05
    (
        "claim, two categories",
        (Line("a", 10_000, "skincare"), Line("b", 5_001, "makeup")),
        Evidence(touches=(staff_touch("s1"),), claims=(claim("s2"),)),
        {},
        {},
        [],
        {"s2": 1_050},
    ),
    # KOL source on top: 20,000 x 5 % = 1,000 to the staff, x 10 % = 2,000 to the KOL
    (
        "touch and KOL",
        20_000,
        Evidence(touches=(staff_touch("s1"),), sources=(kol(),)),
        {},
        {},
        [],
        {"s1": 1_000, "kolA": 2_000},
    ),
    # a group activator's claim and group touch: activity credit only, no money to anyone
    (
        "activator only",
        50_000,
        Evidence(touches=(staff_touch("g1", kind="group"),), claims=(claim("g1", "group_activator"),)),
        {},
        {},
        [],
        {},
    ),
    # activator claims first, the staff's claim still wins: 8,888 x 5 % = 444.4
    (
        "activator and staff claims",
        8_888,
        Evidence(claims=(claim("g1", "group_activator", timedelta(minutes=1)), claim("s2"))),
        {},
        {},
        [],
        {"s2": 444},
    ),
    # 30,000 x 5 % = 1,500, then refunded in full
    ("full refund", 30_000, Evidence(claims=(claim("s3"),)), {}, {}, [30_000], {}),
    # 500 to s1 and 1,000 to the KOL; 3,333 of 10,000 refunded: 1,500 x 6,667 / 10,000 = 1,000.05 -> 1,000 owed in
    # all, split 500 : 1,000 -> 333.33 and 666.67 -> 333 and 666, the fen left to the larger remainder (the KOL)
    (
        "partial refund",
        10_000,
        Evidence(claims=(claim("s1"),), sources=(kol(),)),
        {},
        {},
        [3_333],
        {"s1": 333, "kolA": 667},
    ),
    # two partial refunds of 1,000 from 7,000 (s2 at 5 %: 350): 350 x 6,000 / 7,000 = 300, then x 5,000 / 7,000 = 250
    ("two refunds", 7_000, Evidence(claims=(claim("s2"),)), {}, {}, [1_000, 1_000], {"s2": 250}),
    # s1 at 150,000 of the month: tier 7 %, skincare keeps 8 %: makeup 20,000 x 7 % = 1,400 + skincare 800
    (
        "tier",
        (Line("a", 20_000, "makeup"), Line("b", 10_000, "skincare")),
        Evidence(claims=(claim("s1"),)),
        {"s1": 150_000},
        {},
        [],
        {"s1": 2_200},
    ),
    # 100,000 skincare x 8 % = 8,000, capped at 5,000 an order
    ("order cap", (Line("a", 100_000, "skincare"),), Evidence(claims=(claim("s2"),)), {}, {}, [], {"s2": 5_000}),
    # 30,000 x 5 % = 1,500, but s1 has 19,500 of its 20,000 this month: 500
    ("month cap", 30_000, Evidence(claims=(claim("s1"),)), {}, {"s1": 19_500}, [], {"s1": 500}),
    # a persona's journey touch, 2 %: 9,999 x 2 % = 199.98; a KOC at 5 %: 499.95
    (
        "persona and KOC",
        9_999,
        Evidence(touches=(staff_touch("", kind="journey", persona="xiaowan"),), sources=(kol("kocB", "koc"),)),
        {},
        {},
        [],
        {"persona:xiaowan": 199, "kocB": 499},
    ),
    # a claim 31 days after payment is too late (window 30 days): the touch pays, 40,000 x 5 % = 2,000
    (
        "late claim",
        40_000,
        Evidence(touches=(staff_touch("s1"),), claims=(claim("s3", after=31 * DAY),)),
        {},
        {},
        [],
        {"s1": 2_000},
    ),
]


def test_golden_orders() -> None:
    plan = PlanVersion(plan_id="golden", version=1, effective_from=PAID - 99 * DAY, body=GOLDEN)
    for name, lines, facts, gmv, paid, refunds, want in CASES:
        amount = lines if isinstance(lines, int) else sum(x.amount_fen for x in lines)
        order = OrderFacts("o1", "T1", "p1", amount, PAID, () if isinstance(lines, int) else lines)
        args = dict(tenant="t", evidence=facts, plan=plan, current=None, settled=False, last_closed=None)
        outcome = book.reattribute(
            **args,  # type: ignore[arg-type]
            order=order,
            existing=(),
            cause="paid",
            at=PAID,
            month_gmv=gmv,
            month_commission=paid,
        )
        assert outcome.attribution is not None
        entries = outcome.entries
        for k, refund in enumerate(refunds):
            order = dataclasses.replace(order, refunded_fen=order.refunded_fen + refund)
            entries += book.rescale(
                tenant="t",
                order=order,
                current=outcome.attribution,
                existing=entries,
                settled=False,
                cause=f"refund:{k}",
                at=PAID + DAY,
                last_closed=None,
            ).entries
        owed = {payee: amount for (payee, _), amount in ledger.owed(entries).items() if amount}
        assert owed == want, name
        assert all(s.gross_fen == 0 for s in outcome.attribution.shares if s.role == "group_activator"), name
    # Settling the first order moves its 617 fen from held to payable.
    order = OrderFacts("o1", "T1", "p1", 12_345, PAID)
    first = book.reattribute(
        tenant="t",
        order=order,
        evidence=CASES[0][2],
        plan=plan,
        existing=(),
        current=None,
        settled=False,
        cause="paid",
        at=PAID,
        last_closed=None,
    )
    assert first.attribution is not None
    released = book.release(
        tenant="t", order=order, current=first.attribution, existing=first.entries, at=PAID + 20 * DAY, last_closed=None
    )
    balances: dict[str, int] = defaultdict(int)
    for entry in [*first.entries, *released]:
        balances[entry.account] += entry.amount_fen
    assert dict(balances) == {"expense:commission": 617, "held:s1": 0, "payable:s1": -617}
    assert {e.period for e in released} == {"2026-10"}
