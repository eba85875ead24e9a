"""The API (validation, versions, tenant isolation, counts) and person merges, over the real stack."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from siyu_devstack.testing import eventually
from siyu_journey import service
from siyu_journey.adapters import repository as repo
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import create_engine, session_factory, unit_of_work
from siyu_shared.events.catalog import PersonMerged

from .conftest import Harness, person
from .test_journeys import GREETING, contact_added
from .test_timers import AFTER_AN_HOUR

pytestmark = pytest.mark.integration


async def test_validation_versions_and_tenant_isolation(harness: Harness) -> None:
    async with harness.service() as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        h = harness.headers
        looping = {**GREETING, "steps": [*GREETING["steps"], {"id": "again", "kind": "goto", "target": "hello"}]}
        checked = await http.post("/v1/journeys/validate", json=looping, headers=h)
        assert checked.json() == {"valid": False, "problems": ["step 'hello': is on a loop without a wait step"]}
        refused = await http.post("/v1/journeys", json=looping, headers=h)
        assert refused.status_code == 400 and "loop without a wait" in refused.text
        malformed = await http.post("/v1/journeys", json={**GREETING, "steps": []}, headers=h)
        assert malformed.status_code == 422

        # v1 live with a wait; someone enters it; v2 is published: they finish v1, newcomers get v2.
        assert await harness.publish_journey(AFTER_AN_HOUR) == 1
        early = person()
        await harness.emit(contact_added(early, harness.clock.now), subject=early)

        async def enrolled() -> Any:
            return (await harness.history(early))["enrolments"]

        await eventually(enrolled)
        v2 = {**AFTER_AN_HOUR, "templates": {"hello": "v2 你好"}}
        assert await harness.publish_journey(v2) == 2
        versions = (await http.get("/v1/journeys/later", headers=h)).json()
        assert [(v["version"], v["status"]) for v in versions] == [(1, "superseded"), (2, "published")]
        late = person()
        await harness.emit(contact_added(late, harness.clock.now), subject=late)

        async def late_enrolled() -> Any:
            return (await harness.history(late))["enrolments"]

        assert (await eventually(late_enrolled))[0]["version"] == 2
        harness.clock.advance(hours=2)

        async def both_sent() -> Any:
            touches = [t for p in (early, late) for t in (await harness.history(p))["touches"]]
            return touches if [t["status"] for t in touches] == ["sent", "sent"] else None

        touches = await eventually(both_sent)
        assert [t["version"] for t in touches] == [1, 2]
        counts = (await http.get("/v1/journeys/later/counts", headers=h)).json()
        assert counts["steps"]["hello"]["sent"] == 2
        assert counts["steps"]["hour"]["entered"] == 2

        # Shipped examples install as drafts.
        installed = await http.post("/v1/journeys/examples/first_order_coupon", headers=h)
        assert installed.status_code == 201 and installed.json()["status"] == "draft"
        assert (await http.post("/v1/journeys/examples/nope", headers=h)).status_code == 404

        # Another tenant's key sees none of it.
        async with unit_of_work(app.state.runtime.sessions) as session:
            other = (await issue_key(session, tenant=f"{harness.tenant}x", scopes=("admin",), name="o")).plaintext
        other_h = {"Authorization": f"Bearer {other}"}
        assert (await http.get("/v1/journeys/later", headers=other_h)).status_code == 404
        assert (await http.get(f"/v1/persons/{early}/journeys", headers=other_h)).json()["touches"] == []
        assert (await http.get("/v1/journeys", headers=other_h)).json() == []


async def test_a_merge_moves_enrolments_to_the_survivor_without_duplicating_touches(harness: Harness) -> None:
    second = {**AFTER_AN_HOUR, "id": "second", "trigger": {"event": "contact.added"}}
    async with harness.service() as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        await harness.publish_journey(AFTER_AN_HOUR)
        survivor, merged = person(), person()
        await harness.emit(contact_added(survivor, harness.clock.now), subject=survivor)

        async def survivor_in() -> Any:
            return len((await harness.history(survivor))["enrolments"]) == 1

        await eventually(survivor_in)
        await harness.publish_journey(second)  # only the merged person enters this one
        await harness.emit(contact_added(merged, harness.clock.now), subject=merged)

        async def merged_in() -> Any:
            return len((await harness.history(merged))["enrolments"]) == 2

        await eventually(merged_in)
        await harness.emit(
            PersonMerged(survivor_id=survivor, merged_ids=[merged], reason="phone", merged_at=harness.clock.now),
            subject=survivor,
        )

        async def moved() -> Any:
            enrolments = (await harness.history(survivor))["enrolments"]
            return enrolments if len(enrolments) == 2 else None

        enrolments = await eventually(moved)
        assert sorted(e["journey_id"] for e in enrolments) == ["later", "second"]
        left = (await harness.history(merged))["enrolments"]
        assert [(e["journey_id"], e["status"], e["exit_reason"]) for e in left] == [
            ("later", "exited", "merged_duplicate")
        ]
        harness.clock.advance(hours=2)

        async def delivered() -> Any:
            return await harness.deliveries(survivor) == 2

        await eventually(delivered)
        assert await harness.deliveries(merged) == 0
        sent = [t for t in (await harness.history(survivor))["touches"] if t["status"] == "sent"]
        assert sorted(t["journey_id"] for t in sent) == ["later", "second"]


async def test_a_merge_of_several_persons_folds_every_one_into_the_survivor(harness: Harness) -> None:
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    engine = create_engine(harness.stack.service_dsn("journey"), schema="journey", pool_size=2)
    sessions = session_factory(engine)
    tenant, survivor, first, second = harness.tenant, person(), person(), person()
    seeds: dict[str, dict[str, Any]] = {
        survivor: {"tags": ["vip"], "facts": {"skin": "dry"}, "paid_total_fen": 100},
        first: {
            "tags": ["a"],
            "facts": {"skin": "oily", "city": "杭州"},
            "paid_total_fen": 9900,
            "last_paid_at": datetime(2026, 11, 20, tzinfo=UTC),
        },
        second: {
            "tags": ["b"],
            "facts": {"city": "上海", "age": "30"},
            "paid_total_fen": 5000,
            "last_paid_at": datetime(2026, 11, 21, tzinfo=UTC),
            "opted_out": True,
            "owner_staff_id": "staff-2",
            "external_userid": f"wm_{second}",
        },
    }
    try:
        async with unit_of_work(sessions) as session:
            for person_id, values in seeds.items():
                await repo.ensure_person(session, tenant=tenant, person_id=person_id, now=now, **values)
        async with unit_of_work(sessions) as session:
            await service.merge(
                session, tenant=tenant, survivor_id=survivor, merged_ids=[first, second], now=now, topics=harness.topics
            )
        async with unit_of_work(sessions) as session:
            row = await repo.person_row(session, tenant=tenant, person_id=survivor)
            gone = [await repo.person_row(session, tenant=tenant, person_id=p) for p in (first, second)]
        assert row is not None
        assert gone == [None, None]
        assert row.paid_total_fen == 100 + 9900 + 5000  # both merged persons' payments, not only the last one's
        assert row.last_paid_at == datetime(2026, 11, 21, tzinfo=UTC)
        assert sorted(row.tags) == ["a", "b", "vip"]
        assert row.facts == {"skin": "dry", "city": "杭州", "age": "30"}
        assert row.opted_out is True
        assert (row.owner_staff_id, row.external_userid) == ("staff-2", f"wm_{second}")
    finally:
        await engine.dispose()
