"""The rules API: versions, validation with the bad path, packs, families, and tenants that never see each other."""

from __future__ import annotations

import pytest

from siyu_devstack.stack import Stack
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import unit_of_work

from .helpers import harness

pytestmark = pytest.mark.integration

VIP = {"tag": "super_vip", "when": {"count": "orders", "within": "365d", "gt": 10}}


async def test_rules_are_versioned_validated_and_kept_per_tenant(migrated: Stack, topic_prefix: str) -> None:
    async with harness(migrated, topic_prefix, role="api") as h:
        first = (await h.http.put("/v1/rules/vip", json=VIP, headers=h.headers)).json()
        second = (await h.http.put("/v1/rules/vip", json={**VIP, "priority": 2}, headers=h.headers)).json()
        assert (first["version"], second["version"]) == (1, 2)
        assert second["backfill_id"] > first["backfill_id"]
        rule = (await h.http.get("/v1/rules/vip", headers=h.headers)).json()
        assert (rule["version"], rule["time_dependent"], rule["body"]["priority"]) == (2, True, 2)

        taken = await h.http.put("/v1/rules/vip2", json=VIP, headers=h.headers)
        assert taken.status_code == 409  # one rule per tag

        bad = await h.http.put(
            "/v1/rules/x",
            json={"tag": "x", "when": {"any": [{"fact": "last_order_at", "within": "3 months"}]}},
            headers=h.headers,
        )
        assert bad.status_code == 422
        assert "when.any[0].within: expected a duration" in bad.text
        adhoc = await h.http.post("/v1/members/query", json={"when": {"fact": "nope", "eq": 1}}, headers=h.headers)
        assert adhoc.status_code == 422
        assert adhoc.json()["detail"][0]["loc"] == ["body", "when", "fact"]

        # Another tenant's key sees none of it, and cannot change it.
        async with unit_of_work(h.sessions) as session:
            other = await issue_key(session, tenant="someone-else", scopes=("admin",), name="other")
        theirs = {"X-API-Key": other.plaintext}
        assert (await h.http.get("/v1/rules/vip", headers=theirs)).status_code == 404
        assert (await h.http.get("/v1/rules", headers=theirs)).json() == []
        assert (await h.http.delete("/v1/rules/vip", headers=theirs)).status_code == 404
        assert (await h.http.get(f"/v1/backfills/{first['backfill_id']}", headers=theirs)).status_code == 404

        deleted = await h.http.delete("/v1/rules/vip", headers=h.headers)
        assert deleted.status_code == 200
        assert (await h.http.get("/v1/rules/vip", headers=h.headers)).status_code == 404


async def test_packs_install_with_their_families(migrated: Stack, topic_prefix: str) -> None:
    async with harness(migrated, topic_prefix, role="api") as h:
        packs = {p["name"] for p in (await h.http.get("/v1/packs", headers=h.headers)).json()}
        assert packs == {"channel", "dcba", "lifecycle", "rfm"}
        for name in sorted(packs):
            installed = await h.http.post(f"/v1/packs/{name}/install", headers=h.headers)
            assert installed.status_code == 200, installed.text
        rules = (await h.http.get("/v1/rules", headers=h.headers)).json()
        assert len(rules) == 25
        assert {r["pack"] for r in rules} == packs
        assert (await h.http.post("/v1/packs/nope/install", headers=h.headers)).status_code == 404
