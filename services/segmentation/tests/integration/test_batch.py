"""The batch handler gives exactly what one event at a time gives: same facts, same tags, same `tags.changed`
(one per real change, caused by the event that made it), with several events per person, merges and erasures
in the middle of the batch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import orjson
import pytest
from sqlalchemy import delete, event, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from siyu_devstack.stack import Stack
from siyu_segmentation import service
from siyu_segmentation.adapters import bulk
from siyu_segmentation.adapters.rule_store import RuleCache
from siyu_segmentation.adapters.tables import order_facts, outbox, person_tags, profiles, touch_facts
from siyu_segmentation.batch import build_batch_handler
from siyu_segmentation.domain.tagging import RuleBody
from siyu_segmentation.packs import shipped_packs
from siyu_segmentation.retag import Tagger
from siyu_shared.db.engine import create_engine, session_factory
from siyu_shared.events.catalog import (
    ContactAdded,
    ContactRemoved,
    GroupJoined,
    GroupLeft,
    LeadCaptured,
    OrderClosed,
    OrderLine,
    OrderPaid,
    OrderRefunded,
    PersonErased,
    PersonMerged,
    SourceRef,
    TouchFailed,
    TouchSent,
)
from siyu_shared.events.registry import EventData, envelope
from siyu_shared.events.topics import TopicNames
from siyu_shared.kafka.errors import is_infrastructure_failure
from siyu_shared.kafka.runner import Received

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EXTRA_RULES = {
    "touched": {"tag": "touched", "when": {"count": "touches", "gte": 1}},
    "in-group": {"tag": "in_group", "when": {"fact": "groups", "exists": True}},
    "lost-friend": {"tag": "lost_friend", "when": {"fact": "wecom_status", "eq": "removed"}},
    "dry": {"tag": "dry_skin", "when": {"fact": "attr.skin_type", "eq": "dry"}},
    "kol": {"tag": "kol_sourced", "when": {"fact": "account_kinds", "in": ["kol"]}},
}


@pytest.fixture
async def engine(migrated: Stack) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated.service_dsn("segmentation"), schema="segmentation", pool_size=2)
    yield engine
    await engine.dispose()


def story() -> list[EventData]:
    """Several events per person (so several rounds), a merge and an erasure in the middle."""
    ago: Callable[[float], datetime] = lambda days: NOW - timedelta(days=days)  # noqa: E731
    src, kol = SourceRef(channel="xiaohongshu"), SourceRef(channel="douyin", account_kind="kol", partner_id="k1")

    def lead(person: str, n: int, source: SourceRef, **attrs: str) -> LeadCaptured:
        return LeadCaptured(
            lead_id=f"l{n}", person_id=person, kind="form", occurred_at=ago(n), source=source, attributes=attrs
        )

    def paid(person: str, order: str, fen: int, days: float) -> OrderPaid:
        line = OrderLine(line_id="1", category="skincare", amount_fen=fen)
        return OrderPaid(
            order_id=order,
            order_no=order,
            channel="tmall",
            person_id=person,
            amount_fen=fen,
            paid_at=ago(days),
            lines=[line],
        )

    def contact(person: str, staff: str, days: float) -> ContactAdded:
        return ContactAdded(
            person_id=person, external_userid=f"wm-{person}", staff_id=staff, occurred_at=ago(days), source=src
        )

    def removed(person: str, staff: str) -> ContactRemoved:
        return ContactRemoved(
            person_id=person, external_userid=f"wm-{person}", staff_id=staff, removed_by="customer", occurred_at=NOW
        )

    def refund(person: str, order: str, refund_id: str, fen: int, full: bool = False) -> OrderRefunded:
        return OrderRefunded(
            order_id=order,
            order_no=order,
            refund_id=refund_id,
            person_id=person,
            amount_fen=fen,
            full=full,
            refunded_at=NOW,
        )

    def sent(person: str, touch: str) -> TouchSent:
        return TouchSent(touch_id=touch, person_id=person, channel="sms", occurred_at=ago(1))

    return [
        lead("a", 30, kol, skin_type="dry"),
        lead("b", 20, src),
        contact("a", "s1", 25),
        paid("a", "o1", 12000, 10),
        GroupJoined(person_id="b", chat_id="g1", join_scene=1, occurred_at=ago(5)),
        lead("a", 40, src, skin_type="oily"),  # earlier sighting: first channel moves, later answers win
        paid("a", "o2", 25000, 3),
        sent("c", "t1"),
        TouchFailed(touch_id="t2", person_id="c", channel="sms", occurred_at=ago(2), reason="blocked"),
        sent("c", "t2"),  # the latest status of a touch wins
        refund("a", "o2", "r1", 10000),
        refund("a", "o2", "r1", 10000),  # the same refund again: applied once
        OrderClosed(order_id="o1", order_no="o1", person_id="a", closed_at=NOW),
        removed("a", "s1"),
        GroupLeft(person_id="b", chat_id="g1", quit_scene=1, occurred_at=NOW),
        paid("b", "o3", 40000, 2),
        contact("d", "s2", 3),
        contact("d", "s3", 2),
        removed("d", "s2"),  # still a friend of s3
        PersonMerged(survivor_id="a", merged_ids=["b"], reason="phone", merged_at=NOW),
        lead("e", 1, kol, skin_type="dry"),
        PersonErased(person_id="c", requested_at=NOW),
        sent("c", "t3"),  # a new profile after the erasure
        paid("d", "o4", 9000, 1),
        refund("d", "o-unknown", "r2", 100),  # an unknown order: nothing to refund
        refund("a", "o2", "r3", 20000, full=True),
        removed("d", "s3"),  # the last staff: the relationship is removed
        paid("a", "o2", 25000, 3),  # a replay of a known order changes nothing
    ]


async def tenant_with_rules(engine: AsyncEngine) -> str:
    tenant = f"t{uuid4().hex[:8]}"
    async with session_factory(engine)() as session, session.begin():
        for name in ("dcba", "lifecycle"):
            await service.install_pack(session, tenant=tenant, pack=shipped_packs()[name])
        for rule_id, body in EXTRA_RULES.items():
            await service.put_rule(session, tenant=tenant, rule_id=rule_id, body=RuleBody.model_validate(body))
    return tenant


async def run(
    engine: AsyncEngine, *, batched: bool, chunk: int | None = None, events_of: Callable[[], list[EventData]] = story
) -> tuple[str, dict[str, int]]:
    """Handle the story in one batch (or chunks of ``chunk`` events), or one event per transaction (as the runner
    replays a failed batch); returns the tenant and event id → index."""
    tenant = await tenant_with_rules(engine)
    tagger = Tagger(cache=RuleCache(), topics=TopicNames("t"))
    handler = build_batch_handler(tagger, clock=lambda: NOW)
    events: list[Received[Any]] = []
    for data in events_of():
        subject = str(getattr(data, "person_id", None) or getattr(data, "survivor_id", ""))
        events.append(Received(envelope(data, tenant=tenant, subject=subject, source="/test"), data))
    sessions = session_factory(engine)
    size = chunk or len(events) if batched else 1
    for start in range(0, len(events), size):
        async with sessions() as session, session.begin():
            await handler(events[start : start + size], session)
    return tenant, {e.envelope.id: i for i, e in enumerate(events)}


async def state(engine: AsyncEngine, tenant: str, causes: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with engine.connect() as conn:
        for table, key in ((profiles, "person_id"), (order_facts, "order_id"), (touch_facts, "touch_id")):
            rows = (await conn.execute(select(table).where(table.c.tenant == tenant))).mappings()
            out[table.name] = sorted(
                ({k: v for k, v in r.items() if k not in ("tenant", "updated_at")} for r in rows),
                key=lambda r: str(r[key]),
            )
        tags = (await conn.execute(select(person_tags).where(person_tags.c.tenant == tenant))).mappings()
        out["tags"] = sorted(
            (
                r["person_id"],
                r["tag"],
                r["rule_id"],
                r["rule_version"],
                orjson.dumps(r["facts"], option=orjson.OPT_SORT_KEYS),
            )
            for r in tags
        )
        events = []
        for payload in (await conn.execute(select(outbox.c.payload).where(outbox.c.tenant == tenant))).scalars():
            data = orjson.loads(payload)["data"]
            cause = causes[data["cause"].removeprefix("event:")]
            events.append((data["person_id"], cause, data["added"], data["removed"], data["tags"], data["facts"]))
        out["tags.changed"] = sorted(events, key=lambda e: (e[0], e[1]))
    async with engine.begin() as conn:  # no relay runs here: leave no rows for the relays of other tests
        await conn.execute(delete(outbox).where(outbox.c.tenant == tenant))
    return out


async def test_a_batch_gives_what_one_event_at_a_time_gives(engine: AsyncEngine) -> None:
    one_by_one = await state(engine, *await run(engine, batched=False))
    batched = await state(engine, *await run(engine, batched=True))
    assert batched == one_by_one
    assert {p["person_id"] for p in batched["profiles"]} == {"a", "c", "d", "e"}
    assert len(batched["tags.changed"]) >= 8
    a = next(p for p in batched["profiles"] if p["person_id"] == "a")
    assert a["first_channel"] == "xiaohongshu" and a["attributes"] == {"skin_type": "oily"}
    assert a["order_count"] == 1 and a["refunded_fen"] == 25000  # o2 fully refunded, o1 closed, o3 from b
    assert (a["paid_fen"], a["net_fen"], a["categories"]) == (77000, 52000, ["skincare"])  # o1, o2 and b's o3
    d = next(p for p in batched["profiles"] if p["person_id"] == "d")
    assert d["wecom_status"] == "removed" and d["wecom_staff"] == []
    c = next(p for p in batched["profiles"] if p["person_id"] == "c")
    assert (c["touches_received"], c["lead_count"]) == (1, 0)  # t3, after the erasure
    held: dict[str, set[str]] = {}
    for person, tag, *_ in batched["tags"]:
        held.setdefault(person, set()).add(tag)
    assert held == {
        "a": {"dcba_a_buying", "group_eligible", "kol_sourced", "lost_friend", "quadrant_lf_lt", "recency_active"},
        "c": {"dcba_d_stranger", "touched"},
        "d": {"dcba_a_buying", "lost_friend", "quadrant_lf_lt", "recency_active"},
        "e": {"dcba_d_stranger", "dry_skin", "kol_sourced"},
    }
    merge = 19  # the survivor gains what b's order brings; b's tags end with it
    assert [(e[0], [t["tag"] for t in e[2]], len(e[3])) for e in batched["tags.changed"] if e[1] == merge] == [
        ("a", ["group_eligible"], 0),
        ("b", [], 4),
    ]


async def test_batches_of_any_size_give_the_same_facts_tags_and_events(engine: AsyncEngine) -> None:
    one_by_one = await state(engine, *await run(engine, batched=False))
    for chunk in (3, 7):
        assert await state(engine, *await run(engine, batched=True, chunk=chunk)) == one_by_one


def lost_and_gained_again() -> list[EventData]:
    """Tags lost and gained again within one batch: the row ends as the last gain wrote it (time, facts)."""
    src = SourceRef(channel="xiaohongshu")
    at = NOW - timedelta(days=3)
    return [
        LeadCaptured(lead_id="l1", person_id="x", kind="form", occurred_at=at, source=src),
        OrderPaid(order_id="o1", order_no="o1", channel="tmall", person_id="x", amount_fen=40000, paid_at=at),
        OrderRefunded(
            order_id="o1", order_no="o1", refund_id="r1", person_id="x", amount_fen=40000, full=True, refunded_at=at
        ),
        OrderPaid(order_id="o2", order_no="o2", channel="tmall", person_id="x", amount_fen=35000, paid_at=at),
    ]


async def test_tags_lost_and_gained_again_in_one_batch_end_as_one_event_at_a_time(engine: AsyncEngine) -> None:
    one_by_one = await state(engine, *await run(engine, batched=False, events_of=lost_and_gained_again))
    batched = await state(engine, *await run(engine, batched=True, events_of=lost_and_gained_again))
    assert batched == one_by_one
    gained = [(e[1], [t["tag"] for t in e[2]]) for e in batched["tags.changed"]]
    assert [i for i, tags in gained if "group_eligible" in tags] == [1, 3]
    facts = {t[1]: orjson.loads(t[4]) for t in batched["tags"]}
    assert facts["group_eligible"]["sum(orders.net_fen)@8760h"] == 35000  # as the second gain saw it


async def test_locking_writes_nothing_and_each_profile_is_written_once_per_batch(engine: AsyncEngine) -> None:
    tenant = await tenant_with_rules(engine)
    sessions = session_factory(engine)
    xmin = select(profiles.c.person_id, text("xmin::text")).where(profiles.c.tenant == tenant)
    async with sessions() as session, session.begin():
        first = await bulk.lock_profiles(session, tenant=tenant, person_ids=["b", "a", "b"])
        assert {p: (lp.exists, lp.row["lead_count"], lp.row["channels"]) for p, lp in first.items()} == {
            "a": (False, 0, []),
            "b": (False, 0, []),
        }
        assert not (await session.execute(xmin)).all()  # new rows wait for write_profiles
        await bulk.write_profiles(session, tenant=tenant, people=first)
    async with sessions() as session, session.begin():
        before = {r[0]: r[1] for r in await session.execute(xmin)}
        again = await bulk.lock_profiles(session, tenant=tenant, person_ids=["c", "a", "b"])
        assert {p: lp.exists for p, lp in again.items()} == {"a": True, "b": True, "c": False}
        after = {r[0]: r[1] for r in await session.execute(xmin)}
        assert after == before  # locked, not a new row version

    # Three events for "a" (three rounds) and one for a new person: one statement writes the profiles.
    src = SourceRef(channel="xiaohongshu")
    story = [
        LeadCaptured(lead_id="l1", person_id="a", kind="form", occurred_at=NOW, source=src),
        LeadCaptured(lead_id="l2", person_id="n", kind="form", occurred_at=NOW, source=src),
        GroupJoined(person_id="a", chat_id="g1", join_scene=1, occurred_at=NOW),
        OrderPaid(order_id="o1", order_no="o1", channel="tmall", person_id="a", amount_fen=100, paid_at=NOW),
    ]
    events = [Received(envelope(d, tenant=tenant, subject=d.person_id, source="/test"), d) for d in story]
    writes: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "UPDATE profiles" in statement or "INSERT INTO profiles" in statement:
            writes.append(statement)

    handler = build_batch_handler(Tagger(cache=RuleCache(), topics=TopicNames("t")), clock=lambda: NOW)
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with sessions() as session, session.begin():
            await handler(events, session)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert len(writes) == 1
    async with engine.connect() as conn:
        rows = {r.person_id: r for r in await conn.execute(select(profiles).where(profiles.c.tenant == tenant))}
    assert (rows["a"].lead_count, rows["a"].groups, rows["a"].order_count, rows["a"].paid_fen) == (1, ["g1"], 1, 100)
    assert rows["n"].lead_count == 1
    async with engine.begin() as conn:
        for table in (profiles, order_facts, person_tags, outbox):
            await conn.execute(delete(table).where(table.c.tenant == tenant))


async def test_a_profile_created_meanwhile_retries_the_batch(engine: AsyncEngine) -> None:
    """A profile this batch would create appears from another transaction: the batch fails as a serialization
    failure does (the runner retries it) instead of overwriting the other's row."""
    tenant = f"t{uuid4().hex[:8]}"
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        people = await bulk.lock_profiles(session, tenant=tenant, person_ids=["a"])
        async with engine.begin() as other:
            await other.execute(insert(profiles).values(tenant=tenant, person_id="a", lead_count=7))
        with pytest.raises(bulk.ProfileCreatedConcurrently) as raised:
            await bulk.write_profiles(session, tenant=tenant, people=people)
        assert is_infrastructure_failure(raised.value)
    async with engine.begin() as conn:
        assert await conn.scalar(select(profiles.c.lead_count).where(profiles.c.tenant == tenant)) == 7
        await conn.execute(delete(profiles).where(profiles.c.tenant == tenant))
