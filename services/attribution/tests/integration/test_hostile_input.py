"""Hostile values at every edge of the attribution API answer a 4xx with a reason, never a 5xx (issue 15).

Every operation of its OpenAPI is tried by :class:`siyu_devstack.hostile.EveryOperation`; here, what only attribution
checks: periods a time cannot hold, and a plan effective at a wild offset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from siyu_attribution.bootstrap import build_spec
from siyu_devstack.hostile import Client, EveryOperation, hostile_client, openapi
from siyu_devstack.stack import Stack

pytestmark = pytest.mark.integration


class TestEveryOperation(EveryOperation):
    document = openapi(build_spec)


PERIOD_ROUTES = [
    *(("GET", f"/v1/reports/{name}", "query") for name in ("channels", "repurchase", "super-users", "funnel")),
    *(("GET", f"/v1/reports/{name}", "query") for name in ("attribution", "payees")),
    ("GET", "/v1/ledger", "query"),
    ("GET", "/v1/statements", "query"),
    ("POST", "/v1/periods/{period}/close", "path"),
]


@pytest.fixture(scope="module")
async def client(migrated: Stack) -> AsyncIterator[Client]:
    async with hostile_client("attribution", migrated) as client:
        yield client


@pytest.mark.parametrize(("method", "path", "where"), PERIOD_ROUTES)
@pytest.mark.parametrize("period", ["0000-01", "1899-12", "9999-01", "0001-01", "٢٠٢٦-01", "2026-13", "2026-1"])
async def test_a_period_outside_what_a_time_holds_is_refused(
    client: Client, method: str, path: str, where: str, period: str
) -> None:
    url = path.replace("{period}", quote(period, safe="")) if where == "path" else path
    params = {"period": period} if where == "query" else {}
    response = await client.http.request(method, url, params=params, headers=client.headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == [where, "period"]


@pytest.mark.parametrize(("method", "path", "where"), PERIOD_ROUTES)
async def test_the_first_and_last_periods_a_time_holds_are_answered(
    client: Client, method: str, path: str, where: str
) -> None:
    for period in ("1900-01", "9998-12"):
        url = path.replace("{period}", period) if where == "path" else path
        params = {"period": period} if where == "query" else {}
        response = await client.http.request(method, url, params=params, headers=client.headers)
        assert response.status_code in (200, 409), response.text  # closing a period of 9998 later is a conflict


async def test_a_plan_effective_at_a_wild_offset_is_refused(client: Client) -> None:
    plan = {"plan_id": "wild", "effective_from": "2026-11-01T00:00:00+23:30", "body": {"model": "linear"}}
    response = await client.http.post("/v1/plans", json=plan, headers=client.headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "effective_from"]
    assert (await client.http.get("/v1/plans/wild", headers=client.headers)).status_code == 404
