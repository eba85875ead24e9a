"""The SQL compiler agrees with the Python evaluator; the recency sweep tags dormancy with no event; backfills
report progress, can be cancelled, and dry runs change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from siyu_devstack.stack import Stack
from siyu_devstack.testing import eventually
from siyu_segmentation import service
from siyu_segmentation.adapters.rule_sql import compile_condition
from siyu_segmentation.adapters.tables import order_facts, outbox, person_tags, profiles, touch_facts
from siyu_segmentation.domain.facts import Profile
from siyu_segmentation.domain.rules import parse_condition
from siyu_segmentation.loops import run_backfill_step, run_sweep
from siyu_segmentation.packs import shipped_packs
from siyu_shared.db.engine import create_engine, session_factory
from siyu_shared.events.catalog import OrderPaid, TagsChanged
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.registry import parse_data
from siyu_shared.events.topics import TopicNames

from ..conftest import ALICE, BOB, CASES, NOW, holds
from .helpers import harness, pid

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(migrated: Stack) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated.service_dsn("segmentation"), schema="segmentation", pool_size=2)
    yield engine
    await engine.dispose()


async def store(engine: AsyncEngine, tenant: str, *people: Profile) -> None:
    async with engine.begin() as conn:
        for person in people:
            values = {k: sorted(v) if isinstance(v, set) else v for k, v in person.values.items()}
            await conn.execute(
                insert(profiles).values(
                    tenant=tenant, person_id=person.person_id, attributes=person.attributes, **values
                )
            )
            for o in person.orders:
                await conn.execute(
                    insert(order_facts).values(
                        tenant=tenant,
                        person_id=person.person_id,
                        order_id=o.order_id,
                        paid_at=o.paid_at,
                        amount_fen=o.amount_fen,
                        refunded_fen=o.refunded_fen,
                        voided=o.voided,
                        categories=list(o.categories),
                    )
                )
            for t in person.touches:
                await conn.execute(
                    insert(touch_facts).values(
                        tenant=tenant,
                        person_id=person.person_id,
                        touch_id=t.touch_id,
                        occurred_at=t.occurred_at,
                        channel=t.channel,
                        status=t.status,
                    )
                )


async def test_sql_compiler_agrees_with_the_python_evaluator_on_every_case(engine: AsyncEngine) -> None:
    tenant = f"t{uuid4().hex[:8]}"
    await store(engine, tenant, ALICE, BOB)
    disagreements = []
    async with engine.connect() as conn:
        for case in CASES:
            condition = parse_condition(case.when)
            matched = set(
                (
                    await conn.execute(
                        select(profiles.c.person_id).where(
                            profiles.c.tenant == tenant, compile_condition(condition, profiles, NOW)
                        )
                    )
                ).scalars()
            )
            in_sql = case.profile.person_id in matched
            in_python = holds(condition, case.profile, NOW)
            if not in_sql == in_python == case.expected:
                disagreements.append((case.name, in_sql, in_python, case.expected))
            # The negation must agree too (NULLs must not leak out of SQL).
            negated = set(
                (
                    await conn.execute(
                        select(profiles.c.person_id).where(
                            profiles.c.tenant == tenant,
                            compile_condition(parse_condition({"not": case.when}), profiles, NOW),
                        )
                    )
                ).scalars()
            )
            if (case.profile.person_id in negated) == in_sql:
                disagreements.append((f"not {case.name}", not in_sql, not in_python, not case.expected))
    assert disagreements == []


def paid(person: str, order: str, fen: int, at: datetime) -> OrderPaid:
    return OrderPaid(order_id=order, order_no=order, channel="tmall", person_id=person, amount_fen=fen, paid_at=at)


async def test_the_recency_sweep_tags_dormancy_on_day_91_with_no_event(migrated: Stack, topic_prefix: str) -> None:
    async with harness(migrated, topic_prefix, sweep_interval_s=3600) as h:
        installed = (await h.http.post("/v1/packs/lifecycle/install", headers=h.headers)).json()
        await eventually(lambda: h.backfill_done(installed["backfill_id"]))
        now = datetime.now(UTC)
        person = pid()
        event = await h.send(paid(person, f"o-{person}", 9900, now - timedelta(days=80)))
        await eventually(lambda: h.handled(event))
        first = await h.tag_events(person)
        assert first[-1]["data"]["tags"] == ["quadrant_lf_lt", "recency_at_risk"]

        # Day 90 after the order: nothing changes. Day 91: dormant, with no event, one tags.changed.
        day_90 = now + timedelta(days=10)
        await run_sweep(h.sessions, topics=h.topics, chunk=1000, now=day_90, only_tenants=[h.tenant])
        assert len(await h.tag_events(person)) == len(first)
        day_91 = now + timedelta(days=11)
        report = await run_sweep(h.sessions, topics=h.topics, chunk=1000, now=day_91, only_tenants=[h.tenant])
        assert report.changed == 1
        events = await h.tag_events(person)
        assert len(events) == len(first) + 1
        change = events[-1]["data"]
        assert [a["tag"] for a in change["added"]] == ["recency_dormant"]
        assert [r["tag"] for r in change["removed"]] == ["recency_at_risk"]
        assert change["tags"] == ["quadrant_lf_lt", "recency_dormant"]
        assert change["cause"] == f"sweep:{day_91.isoformat()}"
        assert change["facts"]["last_order_at"]
        # The outbox row written in SQL is a valid CloudEvent carrying a valid payload.
        async with h.sessions() as session:
            raw = await session.scalar(
                select(outbox.c.payload).where(outbox.c.tenant == h.tenant).order_by(outbox.c.id.desc()).limit(1)
            )
        event = CloudEvent.from_json(raw)
        assert (event.type, event.subject, event.tenant) == ("siyu.tags.changed", person, h.tenant)
        assert parse_data(event) == TagsChanged.model_validate(change)
        # Sweeping again changes nothing and emits nothing.
        again = await run_sweep(
            h.sessions, topics=h.topics, chunk=1000, now=day_91 + timedelta(hours=1), only_tenants=[h.tenant]
        )
        assert again.changed == 0
        assert len(await h.tag_events(person)) == len(events)
        reasons = {t["tag"]: t for t in (await h.http.get(f"/v1/persons/{person}", headers=h.headers)).json()["tags"]}
        assert reasons["recency_dormant"]["rule_id"] == "recency-dormant"
        assert reasons["recency_dormant"]["facts"]["last_order_at"]
        counts = (await h.http.get("/v1/tags/counts", headers=h.headers)).json()
        assert counts["now"]["recency_dormant"] == 1
        assert {"day": day_91.date().isoformat(), "tag": "recency_dormant", "members": 1} in counts["daily"]


async def test_dry_run_changes_nothing_backfill_reports_progress_and_can_be_cancelled(
    migrated: Stack, topic_prefix: str, engine: AsyncEngine
) -> None:
    # The api role only: no worker loop, so the test drives the backfill chunk by chunk.
    async with harness(migrated, topic_prefix, role="api") as h:
        people = [Profile(f"p{i:02d}", {"order_count": i}, {"skin_type": "dry" if i % 2 else "oily"}) for i in range(7)]
        await store(engine, h.tenant, *people)
        rule = {"tag": "dry_skin", "when": {"fact": "attr.skin_type", "eq": "dry"}}

        dry = (await h.http.post("/v1/rules/dry-run", json=rule, headers=h.headers)).json()
        assert dry == {"gain": 3, "lose": 0, "sample_gain": ["p01", "p03", "p05"], "sample_lose": []}
        assert await h.tag_events() == []

        bad = await h.http.put(
            "/v1/rules/dry", json={**rule, "when": {"all": [{"fact": "order_count", "gte": "x"}]}}, headers=h.headers
        )
        assert bad.status_code == 422
        assert "when.all[0].gte: expected a number" in bad.text

        job = (await h.http.put("/v1/rules/dry", json=rule, headers=h.headers)).json()["backfill_id"]
        sessions = session_factory(engine)
        steps = 0
        while (await h.http.get(f"/v1/backfills/{job}", headers=h.headers)).json()["status"] != "done":
            await run_backfill_step(sessions, topics=h.topics, chunk=2, now=datetime.now(UTC))
            steps += 1
        progress = (await h.http.get(f"/v1/backfills/{job}", headers=h.headers)).json()
        assert (progress["total"], progress["processed"], progress["changed"], steps) == (7, 7, 3, 5)
        assert sorted(e["subject"] for e in await h.tag_events()) == ["p01", "p03", "p05"]

        # The same tag for everyone now: the dry run of an edit shows who would lose it.
        looser = {"tag": "dry_skin", "when": {"fact": "order_count", "gte": 5}}
        dry = (await h.http.post("/v1/rules/dry-run", json=looser, headers=h.headers)).json()
        assert (dry["gain"], dry["lose"]) == (1, 2)

        job = (await h.http.put("/v1/rules/dry", json=looser, headers=h.headers)).json()["backfill_id"]
        await run_backfill_step(sessions, topics=h.topics, chunk=2, now=datetime.now(UTC))
        cancel = await h.http.post(f"/v1/backfills/{job}/cancel", headers=h.headers)
        assert cancel.status_code == 202
        await run_backfill_step(sessions, topics=h.topics, chunk=2, now=datetime.now(UTC))
        stopped = (await h.http.get(f"/v1/backfills/{job}", headers=h.headers)).json()
        assert (stopped["status"], stopped["processed"]) == ("cancelled", 2)
        async with engine.connect() as conn:
            held = set(
                (await conn.execute(select(person_tags.c.person_id).where(person_tags.c.tenant == h.tenant))).scalars()
            )
        assert held == {"p03", "p05"}  # p01 lost it in the first chunk; the rest was never reached

        members = await h.http.get("/v1/tags/dry_skin/members?format=csv", headers=h.headers)
        assert members.text.splitlines()[0] == "person_id,rule_id,rule_version,tagged_at"
        adhoc = (
            await h.http.post(
                "/v1/members/query", json={"when": {"fact": "order_count", "gte": 4}, "limit": 2}, headers=h.headers
            )
        ).json()
        assert adhoc == {"members": ["p04", "p05"], "next_after": "p05"}
        other = await h.http.get("/v1/rules/dry", headers={"X-API-Key": "siyu_nonsense"})
        assert other.status_code == 401


async def test_the_migrated_schema_matches_the_table_declarations(engine: AsyncEngine) -> None:
    from siyu_segmentation.adapters.tables import metadata

    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'segmentation'")
        )
        in_db: dict[str, set[str]] = {}
        for table, column in rows:
            in_db.setdefault(table, set()).add(column)
    declared = {t.name: {c.name for c in t.columns} for t in metadata.tables.values()}
    assert {name: in_db.get(name) for name in declared} == declared


async def test_rfm_quintiles_are_recomputed_over_the_tenant_by_the_sweep(engine: AsyncEngine) -> None:
    tenant = f"t{uuid4().hex[:8]}"
    now = datetime.now(UTC)
    # Ten buyers, b0 the least recent / least frequent / least money, b9 the best on all three; one non-buyer.
    buyers = [
        Profile(
            f"b{i}", {"order_count": i + 1, "net_fen": 1000 * (i + 1), "last_order_at": now - timedelta(days=100 - i)}
        )
        for i in range(10)
    ]
    await store(engine, tenant, *buyers, Profile("nobody", {"order_count": 0}))
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await service.install_pack(session, tenant=tenant, pack=shipped_packs()["rfm"])
    report = await run_sweep(sessions, topics=TopicNames("rfm."), chunk=4, now=now, only_tenants=[tenant])
    assert report.changed == 10
    async with engine.connect() as conn:
        scores = dict(
            (
                await conn.execute(select(profiles.c.person_id, profiles.c.rfm_r).where(profiles.c.tenant == tenant))
            ).all()
        )
        tags = dict(
            (
                await conn.execute(
                    select(person_tags.c.person_id, person_tags.c.tag).where(person_tags.c.tenant == tenant)
                )
            ).all()
        )
    assert [scores[f"b{i}"] for i in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores["nobody"] is None
    assert tags["b9"] == tags["b6"] == "rfm_champion"
    assert tags["b0"] == "rfm_hibernating"
    assert "nobody" not in tags
