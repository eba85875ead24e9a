"""Hostile values at every edge of the segmentation API answer a 4xx with a reason, never a 5xx (issue 15).

Every operation of its OpenAPI is tried by :class:`siyu_devstack.hostile.EveryOperation`; here, what only segmentation
checks: the rule language's operands, deep in a rule, and how far rules nest and list.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu_devstack.hostile import (
    BEYOND_INT64,
    NON_FINITE,
    NUL_TEXT,
    WILD_TIME,
    Client,
    EveryOperation,
    hostile_client,
    openapi,
)
from siyu_devstack.stack import Stack
from siyu_segmentation.bootstrap import build_spec

pytestmark = pytest.mark.integration


class TestEveryOperation(EveryOperation):
    document = openapi(build_spec)


# (a condition with one operand left open, whether the operand is text there)
CONDITIONS = st.sampled_from(
    [
        (lambda v: {"fact": "order_count", "gte": v}, False),
        (lambda v: {"fact": "net_fen", "in": [1, v]}, False),
        (lambda v: {"fact": "attr.skin_type", "eq": v}, True),
        (lambda v: {"all": [{"fact": "has_phone", "eq": True}, {"sum": "orders.net_fen", "gt": v}]}, False),
        (lambda v: {"not": {"fact": "last_order_at", "between": ["2026-01-01T00:00:00Z", v]}}, False),
        (lambda v: {"fact": "first_channel", "starts_with": v}, True),
        (lambda v: {"count": "touches", "channel": v, "gt": 0}, True),
    ]
)
OPERANDS = st.one_of(NUL_TEXT, BEYOND_INT64, NON_FINITE, WILD_TIME)


@pytest.fixture(scope="module")
async def client(migrated: Stack) -> AsyncIterator[Client]:
    async with hostile_client("segmentation", migrated) as client:
        yield client


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(condition=CONDITIONS, operand=OPERANDS)
async def test_a_rule_that_could_not_be_stored_or_compiled_is_refused_naming_where(
    client: Client, condition: tuple[Callable[[Any], dict[str, Any]], bool], operand: Any
) -> None:
    """Deep in the rule language too: each operand a rule, a dry run or a member query takes."""
    build, takes_text = condition
    when = build(operand)
    # A wild time is plain text where the rule takes text (a prefix, a channel): it is kept as it is.
    refused = not (takes_text and isinstance(operand, str) and "\x00" not in operand)
    rule = json.dumps({"tag": "hostile", "when": when}).encode()
    for method, path, body in [
        ("PUT", "/v1/rules/hostile", rule),
        ("POST", "/v1/rules/dry-run", rule),
        ("POST", "/v1/members/query", json.dumps({"when": when}).encode()),
    ]:
        response = await client.http.request(method, path, content=body, headers=client.headers)
        assert response.status_code < 500, response.text
        if refused:
            assert response.status_code == 422, f"{method} {path} {when!r}: {response.status_code} {response.text}"
            assert response.json()["detail"][0]["msg"], response.text


async def test_rules_nest_and_list_only_to_hand_size(client: Client) -> None:
    deep: dict[str, Any] = {"fact": "has_phone", "eq": True}
    for _ in range(40):
        deep = {"not": deep}
    wide = {"any": [{"fact": "has_phone", "eq": True}] * 1001}
    for when in (deep, wide, {"fact": "net_fen", "in": list(range(1001))}):
        response = await client.http.put("/v1/rules/wide", json={"tag": "wide", "when": when}, headers=client.headers)
        assert response.status_code == 422, response.text
        assert "at most" in response.text or "nest" in response.text
