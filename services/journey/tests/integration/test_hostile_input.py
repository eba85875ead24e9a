"""Hostile values at every edge of the journey API answer a 4xx with a reason, never a 5xx (issue 15).

Every operation of its OpenAPI is tried by :class:`siyu_devstack.hostile.EveryOperation`; here, what only journey
checks: a touch refused at the door queues no event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from sqlalchemy import func, select

from siyu_devstack.hostile import Client, EveryOperation, hostile_client, openapi
from siyu_devstack.stack import Stack
from siyu_journey.adapters.tables import outbox
from siyu_journey.bootstrap import build_spec
from siyu_shared.db.engine import unit_of_work

pytestmark = pytest.mark.integration


class TestEveryOperation(EveryOperation):
    document = openapi(build_spec)


async def count_outbox(client: Client) -> int:
    """How many events the client's tenant has queued."""
    async with unit_of_work(client.app.state.runtime.sessions) as session:
        query = select(func.count()).select_from(outbox).where(outbox.c.tenant == client.tenant)
        return int(await session.scalar(query) or 0)


@pytest.fixture(scope="module")
async def client(journey_migrated: Stack) -> AsyncIterator[Client]:
    async with hostile_client("journey", journey_migrated) as client:
        yield client


async def test_a_touch_with_offset_2330_is_refused_at_the_door(client: Client) -> None:
    touch = {
        "id": f"sidebar-{uuid4().hex[:8]}",
        "person_id": f"p{uuid4().hex[:10]}",
        "channel": "wecom_1v1",
        "kind": "staff",
        "staff_id": "xwz_01",
        "occurred_at": "2026-11-22T08:15:00+23:30",
    }
    before = await count_outbox(client)
    refused = await client.http.post("/v1/touches", json=touch, headers=client.headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "occurred_at"]
    assert "-14:00 and +14:00" in refused.json()["detail"][0]["msg"]
    assert await count_outbox(client) == before  # no event for segmentation to dead-letter

    # The same touch at an offset in use is recorded and queues its event.
    accepted = await client.http.post(
        "/v1/touches", json={**touch, "occurred_at": "2026-11-22T08:15:00+14:00"}, headers=client.headers
    )
    assert accepted.status_code == 201, accepted.text
    assert await count_outbox(client) == before + 1
