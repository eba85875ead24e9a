"""Events in → facts → tags → exactly one tags.changed per real change; merges fold, erasure wipes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually, read_topic
from siyu_segmentation.adapters.rule_store import lock_tenant_exclusive
from siyu_shared.events.catalog import (
    ContactAdded,
    LeadCaptured,
    OrderLine,
    OrderPaid,
    OrderRefunded,
    PersonErased,
    PersonMerged,
    SourceRef,
)
from siyu_shared.events.topics import Topic

from .helpers import Harness, harness, pid

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


async def install_rules(h: Harness) -> None:
    await h.put("/v1/families/dcba", {"exclusive": True})
    rules = {
        "stranger": {"tag": "d_stranger", "family": "dcba", "priority": 0, "when": {"fact": "lead_count", "gte": 0}},
        "friend": {
            "tag": "c_friend",
            "family": "dcba",
            "priority": 1,
            "when": {"fact": "wecom_status", "eq": "friend"},
        },
        "buyer": {"tag": "a_buyer", "family": "dcba", "priority": 3, "when": {"count": "orders", "gte": 1}},
        "group-eligible": {"tag": "group_eligible", "when": {"sum": "orders.net_fen", "within": "365d", "gte": 30000}},
        "kol": {"tag": "kol_sourced", "when": {"fact": "account_kinds", "in": ["kol", "koc"]}},
        "skin": {"tag": "dry_skin", "when": {"fact": "attr.skin_type", "eq": "dry"}},
    }
    for rule_id, body in rules.items():
        saved = await h.put(f"/v1/rules/{rule_id}", body)
        await eventually(lambda job=saved["backfill_id"]: h.backfill_done(job))


def lead(person: str, *, kind: str = "unknown", incentive: bool = False, **attrs: str) -> LeadCaptured:
    return LeadCaptured(
        lead_id=f"l-{person}-{len(attrs)}-{kind}",
        person_id=person,
        kind="form",
        occurred_at=NOW - timedelta(days=3),
        source=SourceRef(channel="xiaohongshu", account_kind=kind),  # type: ignore[arg-type]
        attributes=dict(attrs),
        incentive=incentive,
    )


def paid(person: str, order: str, fen: int, days_ago: float = 1) -> OrderPaid:
    return OrderPaid(
        order_id=order,
        order_no=f"tid-{order}",
        channel="tmall",
        person_id=person,
        amount_fen=fen,
        paid_at=NOW - timedelta(days=days_ago),
        lines=[OrderLine(line_id="1", category="skincare", amount_fen=fen)],
    )


def friend(person: str) -> ContactAdded:
    return ContactAdded(
        person_id=person,
        external_userid=f"wm-{person}",
        staff_id="staff-1",
        occurred_at=NOW - timedelta(days=2),
        source=SourceRef(channel="wecom"),
    )


def tag_names(events: list[dict[str, object]]) -> list[tuple[list[str], list[str]]]:
    out = []
    for e in events:
        data = e["data"]
        assert isinstance(data, dict)
        out.append(([a["tag"] for a in data["added"]], [r["tag"] for r in data["removed"]]))
    return out


async def test_events_change_tags_once_per_real_change_and_never_for_no_ops(migrated: Stack, topic_prefix: str) -> None:
    async with harness(migrated, topic_prefix) as h:
        await install_rules(h)
        person = pid()
        sent = [await h.send(lead(person, skin_type="dry"))]
        await eventually(lambda: h.handled(*sent))
        sent.append(await h.send(friend(person)))
        sent.append(await h.send(lead(person, skin_type="dry")))  # no-op for tags: same stage, same skin
        sent.append(await h.send(paid(person, "o1", 20000)))
        replay = await h.send(paid(person, "o1", 20000))  # ingest re-sent the order under a new event id
        sent += [replay]
        await h.producer.send_and_wait(  # a Kafka redelivery of the same event: the inbox drops it
            h.topics.name(OrderPaid.topic), value=replay.to_json(), key=replay.key
        )
        sent.append(await h.send(paid(person, "o2", 15000)))
        await eventually(lambda: h.handled(*sent))

        events = await h.tag_events(person)
        assert tag_names(events) == [
            (["d_stranger", "dry_skin"], []),
            (["c_friend"], ["d_stranger"]),
            (["a_buyer"], ["c_friend"]),
            (["group_eligible"], []),
        ]
        last = events[-1]["data"]
        assert last["cause"] == f"event:{sent[-1].id}"
        assert last["tags"] == ["a_buyer", "dry_skin", "group_eligible"]
        assert last["facts"] == {"sum(orders.net_fen)@8760h": 35000}
        assert last["added"][0] == {
            "tag": "group_eligible",
            "family": None,
            "rule_id": "group-eligible",
            "rule_version": 1,
        }

        # A refund that takes the year's net under the threshold removes the tag: one more event.
        refund = await h.send(
            OrderRefunded(
                order_id="o2",
                order_no="tid-o2",
                refund_id="r1",
                person_id=person,
                amount_fen=10000,
                full=False,
                refunded_at=NOW,
            )
        )
        await eventually(lambda: h.handled(refund))
        assert tag_names((await h.tag_events(person))[4:]) == [([], ["group_eligible"])]

        # The profile says why each tag is there.
        profile = (await h.http.get(f"/v1/persons/{person}", headers=h.headers)).json()
        assert {t["tag"]: t["rule_id"] for t in profile["tags"]} == {"a_buyer": "buyer", "dry_skin": "skin"}
        assert profile["facts"]["order_count"] == 2
        assert profile["facts"]["net_fen"] == 25000

        # The relay publishes them to tags.v1, keyed by the person.
        on_kafka = await eventually(lambda: _published(h, expected=5), timeout_s=20)
        assert {key for key, _, _ in on_kafka} == {person.encode()}


async def _published(h: Harness, *, expected: int) -> list[tuple[bytes | None, bytes, dict[str, bytes]]] | None:
    messages = await read_topic(h.bootstrap, h.topics.name(Topic.TAGS), idle_s=0.5)
    mine = [m for m in messages if m[2].get("ce_tenant") == h.tenant.encode()]
    return mine if len(mine) >= expected else None


async def test_a_merge_folds_facts_and_tags_into_the_survivor_and_erasure_wipes(
    migrated: Stack, topic_prefix: str
) -> None:
    async with harness(migrated, topic_prefix) as h:
        await install_rules(h)
        survivor, merged = pid(), pid()
        sent = [
            await h.send(paid(survivor, f"o-{survivor}", 35000)),
            await h.send(lead(merged, kind="kol", skin_type="dry")),
            await h.send(friend(merged)),
        ]
        await eventually(lambda: h.handled(*sent))
        fold = await h.send(PersonMerged(survivor_id=survivor, merged_ids=[merged], reason="phone", merged_at=NOW))
        await eventually(lambda: h.handled(fold))

        survivor_events = await h.tag_events(survivor)
        assert tag_names(survivor_events)[-1] == (["dry_skin", "kol_sourced"], [])
        assert survivor_events[-1]["data"]["tags"] == ["a_buyer", "dry_skin", "group_eligible", "kol_sourced"]
        merged_events = await h.tag_events(merged)
        assert tag_names(merged_events)[-1] == ([], ["c_friend", "dry_skin", "kol_sourced"])
        assert (await h.http.get(f"/v1/persons/{merged}", headers=h.headers)).status_code == 404
        folded = (await h.http.get(f"/v1/persons/{survivor}", headers=h.headers)).json()
        assert folded["facts"]["wecom_status"] == "friend"
        assert folded["attributes"] == {"skin_type": "dry"}

        erase = await h.send(PersonErased(person_id=survivor, requested_at=NOW))
        await eventually(lambda: h.handled(erase))
        assert (await h.http.get(f"/v1/persons/{survivor}", headers=h.headers)).status_code == 404
        members = (await h.http.get("/v1/tags/a_buyer/members", headers=h.headers)).json()
        assert members["members"] == []


async def test_a_live_event_waits_for_the_backfill_chunk_in_flight_then_lands(
    migrated: Stack, topic_prefix: str
) -> None:
    async with harness(migrated, topic_prefix) as h:
        saved = await h.put("/v1/rules/buyer", {"tag": "a_buyer", "when": {"count": "orders", "gte": 1}})
        await eventually(lambda: h.backfill_done(saved["backfill_id"]))
        person = pid()
        async with h.sessions() as chunk, chunk.begin():
            await lock_tenant_exclusive(chunk, h.tenant)  # what a backfill chunk holds while it writes
            event = await h.send(paid(person, f"o-{person}", 100))
            await eventually(lambda: _waiting_on_advisory_lock(h))
            assert not await h.handled(event)
        await eventually(lambda: h.handled(event))
        assert tag_names(await h.tag_events(person)) == [(["a_buyer"], [])]


async def _waiting_on_advisory_lock(h: Harness) -> bool:
    async with h.sessions() as session:
        waiting = await session.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 7301 AND NOT granted")
        )
    return bool(waiting)
