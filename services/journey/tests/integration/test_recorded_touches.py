"""Touches staff make by hand, recorded through the API: one event each, retries harmless, conflicts refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .conftest import Harness, person

pytestmark = pytest.mark.integration


async def test_a_recorded_group_touch_is_published_once_and_a_retry_changes_nothing(harness: Harness) -> None:
    async with harness.service() as (app, http):
        harness.bind(app, http)
        await harness.issue_key()
        buyer = person()
        touch = {
            "id": "sidebar-1",
            "person_id": buyer,
            "channel": "wecom_group",
            "kind": "group",
            "staff_id": "act_lily",
            "occurred_at": (harness.clock.now - timedelta(minutes=3)).isoformat(),
        }
        first = await http.post("/v1/touches", json=touch, headers=harness.headers)
        assert first.status_code == 201, first.text
        assert first.json()["recorded"] is True
        again = await http.post("/v1/touches", json=touch, headers=harness.headers)
        assert again.status_code == 200 and again.json() == {**first.json(), "recorded": False}
        other = await http.post("/v1/touches", json={**touch, "staff_id": "act_mia"}, headers=harness.headers)
        assert other.status_code == 409
        future = {**touch, "id": "sidebar-2", "occurred_at": (harness.clock.now + timedelta(hours=1)).isoformat()}
        assert (await http.post("/v1/touches", json=future, headers=harness.headers)).status_code == 422
        bad_kind = {**touch, "id": "sidebar-3", "kind": "journey"}
        assert (await http.post("/v1/touches", json=bad_kind, headers=harness.headers)).status_code == 422
        assert (await http.post("/v1/touches", json=touch)).status_code == 401

        (event,) = await harness.events_of(buyer)
        assert event["type"] == "siyu.touch.sent"
        assert (event["touch_id"], event["kind"], event["channel"], event["staff_id"]) == (
            first.json()["touch_id"],
            "group",
            "wecom_group",
            "act_lily",
        )
        assert event["journey_id"] is None
