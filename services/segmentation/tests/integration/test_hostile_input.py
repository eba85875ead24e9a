"""Hostile values at every edge of the segmentation API answer a 4xx with a reason, never a 5xx (issue 15).

Every operation of the app's own OpenAPI is tried, over the real Postgres: a valid request (its documented
example body, example or plain path values, the caller's tenant) with one value replaced by one Postgres cannot
hold or the stack cannot take: text with a NUL (as a value or a key name), an integer beyond int64, a float that is
not finite, a time with an offset beyond ±14:00 or a year outside 1900..9998. Those must be refused (4xx); a very
long text or a very long list may be accepted or refused, but never answer 5xx.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu_devstack.stack import Stack
from siyu_devstack.testing import running_service
from siyu_segmentation.bootstrap import build_spec
from siyu_shared.app import create_app
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import unit_of_work

pytestmark = pytest.mark.integration

SKIPPED = {("get", "/metrics"), ("get", "/healthz"), ("get", "/readyz")}
DOCUMENT: dict[str, Any] = create_app(
    build_spec(database_url="postgresql://nobody@127.0.0.1:1/none", kafka_bootstrap_servers="127.0.0.1:1"), role="api"
).openapi()

NUL_TEXT = st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=8), st.text(max_size=8))
BEYOND_INT64 = st.one_of(
    st.integers(min_value=2**63, max_value=2**80), st.integers(min_value=-(2**80), max_value=-(2**63) - 1)
)
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
WILD_OFFSET = st.builds(
    lambda sign, hours, minutes: f"2026-11-22T08:15:00{sign}{hours:02d}:{minutes:02d}",
    st.sampled_from("+-"),
    st.integers(min_value=14, max_value=23),
    st.sampled_from([1, 30, 59]),
)
WILD_YEAR = st.sampled_from(
    [
        "0001-01-01T00:00:00Z",
        "1899-12-31T23:59:59Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T20:00:00-14:00",
        "0001-01-01T03:00:00+14:00",
    ]
)
WILD_TIME = st.one_of(WILD_OFFSET, WILD_YEAR)
LONG_TEXT = st.integers(min_value=3_000, max_value=20_000).map(lambda n: "x" * n)
LONG_LIST = st.integers(min_value=2_000, max_value=50_000).map(lambda n: ["a"] * n)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    parameters: tuple[dict[str, Any], ...]
    body: Any  # the documented example, or None
    unexampled: tuple[str, ...]  # the body's top-level fields its example leaves out (FastAPI drops nulls)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


@dataclass(frozen=True)
class Hostile:
    where: str  # "path", "query", "body" or "key"
    name: str  # parameter name, or JSON pointer in the body
    value: Any
    refused: bool  # must be refused (4xx); otherwise only "never 5xx"


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def body_schema(operation: dict[str, Any]) -> dict[str, Any]:
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    return resolve(media["schema"]) if media else {}


def body_example(operation: dict[str, Any]) -> Any:
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if media is None:
        return None
    if "example" in media:
        return media["example"]
    if isinstance(media.get("examples"), dict):
        return next(iter(media["examples"].values()))["value"]
    schema = resolve(media["schema"])
    examples = schema.get("examples") or [schema.get("example")]
    return examples[0]


def operations() -> list[Operation]:
    """Every operation that takes input (a path or query parameter, or a body)."""
    found = []
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            params = tuple(p for p in operation.get("parameters", []) if p["in"] in ("path", "query"))
            body = body_example(operation)
            fields = tuple(body_schema(operation).get("properties", {}))
            unexampled = tuple(f for f in fields if isinstance(body, dict) and f not in body)
            if (method, path) not in SKIPPED and (params or body is not None):
                found.append(Operation(method, path, params, body, unexampled))
    return found


def types_of(schema: dict[str, Any]) -> set[str]:
    schema = resolve(schema)
    branches = schema.get("anyOf") or [schema]
    return {str(resolve(b).get("type")) for b in branches} | {str(resolve(b).get("format")) for b in branches}


def plain_value(parameter: dict[str, Any], tenant: str) -> Any:
    """A value the parameter takes: the caller's tenant, its example, its first choice, or something plain."""
    schema = resolve(parameter["schema"])
    if parameter["name"] == "tenant":
        return tenant
    for source in (parameter, schema):
        if source.get("examples"):
            return source["examples"][0]
        if "example" in source:
            return source["example"]
    if "enum" in schema:
        return schema["enum"][0]
    return 1 if "integer" in types_of(schema) else "nobody"


def leaves(value: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    """Every JSON pointer in ``value`` (the root included) with what it points at."""
    yield pointer, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{pointer}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{pointer}/{index}")


def looks_like_time(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T"


@dataclass(frozen=True)
class Place:
    """Where a request carries a value: a path or query parameter, a body value, or the key names of a body object."""

    where: str  # "path", "query", "body" or "key"
    name: str  # parameter name, or JSON pointer in the body
    baseline: Any  # the example's value there (None for a parameter or a field the example leaves out)
    kinds: frozenset[str]  # a parameter's schema types and formats


def places(operation: Operation) -> list[Place]:
    found = [
        Place(p["in"], p["name"], None, frozenset(types_of(p["schema"])))
        for p in operation.parameters
        if p["in"] in ("path", "query")
    ]
    for pointer, value in leaves(operation.body) if operation.body is not None else ():
        if pointer:
            found.append(Place("body", pointer, value, frozenset()))
        if isinstance(value, dict):
            found.append(Place("key", pointer, value, frozenset()))
    return found + [Place("body", f"/{name}", None, frozenset()) for name in operation.unexampled]


def unstorable(place: Place) -> list[Any]:
    """One plain value of each kind the place must refuse."""
    if place.where == "key":
        return ["\x00"]
    values: list[Any] = ["a\x00b"]
    if place.where == "body":
        values += [2**63, -(2**63) - 1, math.nan, math.inf]
        if looks_like_time(place.baseline):
            values += ["2026-11-22T08:15:00+23:30", "0001-01-01T00:00:00Z", "9999-12-31T20:00:00-14:00"]
    if "integer" in place.kinds:
        values.append(str(2**63))
    if "date-time" in place.kinds:
        values.append("2026-11-22T08:15:00+23:30")
    return values


def hostile_values(place: Place) -> st.SearchStrategy[Hostile]:
    def refused(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Hostile]:
        return values.map(lambda v: Hostile(place.where, place.name, v, refused=True))

    def tolerated(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Hostile]:
        return values.map(lambda v: Hostile(place.where, place.name, v, refused=False))

    if place.where == "key":
        return refused(NUL_TEXT)
    options = [refused(NUL_TEXT), tolerated(LONG_TEXT)]
    if place.where == "body":
        options += [refused(BEYOND_INT64), refused(NON_FINITE), tolerated(LONG_LIST)]
        options.append(refused(WILD_TIME) if looks_like_time(place.baseline) else tolerated(WILD_TIME))
    else:
        if "integer" in place.kinds:
            options.append(refused(BEYOND_INT64.map(str)))
        if "date-time" in place.kinds:
            options.append(refused(WILD_TIME))
    return st.one_of(options)


def hostile(operation: Operation) -> st.SearchStrategy[Hostile]:
    """A place of the operation (each as likely as any other), and a hostile value there."""
    return st.sampled_from(places(operation)).flatmap(hostile_values)


def replaced(document: Any, pointer: str, value: Any) -> Any:
    """A copy of ``document`` with the value at ``pointer`` replaced (or added, as the last step)."""
    if not pointer:
        return value
    head, _, rest = pointer[1:].partition("/")
    if isinstance(document, dict) and not rest:
        return {**document, head: value}
    if isinstance(document, list):
        index = int(head)
        return [
            replaced(item, f"/{rest}" if rest else "", value) if i == index else item for i, item in enumerate(document)
        ]
    return {k: replaced(v, f"/{rest}" if rest else "", value) if k == head else v for k, v in document.items()}


def with_key(document: Any, pointer: str, key: str) -> Any:
    """A copy of ``document`` whose object at ``pointer`` has its first key renamed (or ``key`` added if empty)."""
    target: dict[str, Any] = dict(leaves(document))[pointer]
    first = next(iter(target), None)
    renamed = {(f"{k}{key}" if k == first else k): v for k, v in target.items()} if first else {key: 1}
    return replaced(document, pointer, renamed)


def request_of(operation: Operation, change: Hostile, tenant: str) -> tuple[str, dict[str, Any], bytes | None]:
    path, query = operation.path, {}
    for parameter in operation.parameters:
        name = parameter["name"]
        if parameter["in"] == "path":
            value = change.value if (change.where, change.name) == ("path", name) else plain_value(parameter, tenant)
            path = path.replace(f"{{{name}}}", quote(str(value), safe=""))
        elif parameter["in"] == "query":
            if (change.where, change.name) == ("query", name):
                query[name] = change.value
            elif parameter.get("required"):
                query[name] = plain_value(parameter, tenant)
    body = operation.body
    if change.where == "body":
        body = replaced(body, change.name, change.value)
    elif change.where == "key":
        body = with_key(body, change.name, change.value)
    content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    return path, query, content


@dataclass
class Client:
    http: httpx.AsyncClient
    tenant: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
async def client(migrated: Stack) -> AsyncIterator[Client]:
    prefix = f"{migrated.topic_prefix}hostile{uuid4().hex[:6]}."
    async with running_service("segmentation", migrated, topic_prefix=prefix, role="api") as (app, http):
        tenant = f"t{uuid4().hex[:8]}"
        async with unit_of_work(app.state.runtime.sessions) as session:
            key = await issue_key(session, tenant=tenant, scopes=("admin",), name="hostile")
        yield Client(http, tenant, {"X-API-Key": key.plaintext, "Content-Type": "application/json"})


async def send(client: Client, operation: Operation, change: Hostile) -> httpx.Response:
    path, query, content = request_of(operation, change, client.tenant)
    # A path that ends in a slash once decoded ("%2F") is redirected to the route without it: followed.
    return await client.http.request(
        operation.method, path, params=query, content=content, headers=client.headers, follow_redirects=True
    )


@pytest.mark.parametrize("operation", operations(), ids=str)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_hostile_values_are_refused_with_a_reason_never_a_5xx(
    client: Client, operation: Operation, data: st.DataObject
) -> None:
    change = data.draw(hostile(operation), label="change")
    response = await send(client, operation, change)
    assert response.status_code < 500, f"{operation} {change.where} {change.name!r}: {response.text[:500]}"
    if change.refused:
        assert 400 <= response.status_code < 500, f"{operation} accepted {change}: {response.status_code}"
        assert response.json()["detail"], response.text


@pytest.mark.parametrize("operation", operations(), ids=str)
async def test_every_place_refuses_every_kind_of_unstorable_value(client: Client, operation: Operation) -> None:
    """Each place of each operation, each kind once: the fuzzing above may not draw every pair in its examples."""
    for place in places(operation):
        for value in unstorable(place):
            change = Hostile(place.where, place.name, value, refused=True)
            response = await send(client, operation, change)
            assert 400 <= response.status_code < 500, f"{operation} {change}: {response.status_code} {response.text}"
            assert response.json()["detail"], response.text


@pytest.mark.parametrize("operation", operations(), ids=str)
async def test_the_plain_request_each_hostile_one_departs_from_is_not_refused_for_other_reasons(
    client: Client, operation: Operation
) -> None:
    """So a 4xx above is the hostile value's doing: the same request with nothing replaced is served (a 404 or 409
    is a plain answer about ids that do not exist or states, not a refusal of the input)."""
    response = await send(client, operation, Hostile("none", "", None, refused=False))
    assert response.status_code < 500, response.text
    assert response.status_code not in (400, 422), f"{operation}: {response.text}"


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
