"""Hostile values at every edge of a service's API answer a 4xx with a reason, never a 5xx (issue 15).

The machinery of each service's ``tests/integration/test_hostile_input.py``. Every operation of the app's own OpenAPI
is tried, over the real Postgres: a valid request (its documented example body, example or plain path values, the
caller's tenant) with one value replaced by one Postgres cannot hold or the stack cannot take: text with a NUL (as a
value or a key name), an integer beyond int64, a float that is not finite, a time with an offset beyond ±14:00 or a
year outside 1900..9998. Those must be refused (4xx); a very long text or a very long list may be accepted or
refused, but never answer 5xx.

A service's test module subclasses :class:`EveryOperation` with its OpenAPI, gives it a module-scoped ``client``
fixture from :func:`hostile_client`, and adds the checks only that service has; the strategies (``NUL_TEXT``,
``BEYOND_INT64``, …) are for those checks too.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu_devstack.stack import Stack
from siyu_devstack.testing import running_service
from siyu_devstack.topics import create_topics
from siyu_shared.app import create_app
from siyu_shared.auth.keys import issue_key
from siyu_shared.db.engine import unit_of_work
from siyu_shared.events.topics import TopicNames
from siyu_shared.service import ServiceSpec

SKIPPED = {("get", "/metrics"), ("get", "/healthz"), ("get", "/readyz")}
"""Operations that take no input worth trying."""

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


def openapi(build_spec: Callable[..., ServiceSpec]) -> dict[str, Any]:
    """The OpenAPI document of the API ``build_spec`` builds (its settings pointed nowhere: nothing connects)."""
    spec = build_spec(database_url="postgresql://nobody@127.0.0.1:1/none", kafka_bootstrap_servers="127.0.0.1:1")
    document: dict[str, Any] = create_app(spec, role="api").openapi()
    return document


@dataclass(frozen=True)
class Parameter:
    """A path or query parameter of an operation, with what its schema says about it."""

    location: str  # "path" or "query"
    name: str
    required: bool
    kinds: frozenset[str]  # its schema's types and formats
    plain: Any  # see plain_value

    def value(self, tenant: str) -> Any:
        """A value the parameter takes: the caller's tenant, or its plain value."""
        return tenant if self.name == "tenant" else self.plain


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    parameters: tuple[Parameter, ...]
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


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def body_schema(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    return resolve(document, media["schema"]) if media else {}


def body_example(document: dict[str, Any], operation: dict[str, Any]) -> Any:
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if media is None:
        return None
    if "example" in media:
        return media["example"]
    if isinstance(media.get("examples"), dict):
        return next(iter(media["examples"].values()))["value"]
    schema = resolve(document, media["schema"])
    examples = schema.get("examples") or [schema.get("example")]
    return examples[0]


def types_of(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    schema = resolve(document, schema)
    branches = [resolve(document, b) for b in schema.get("anyOf") or [schema]]
    return {str(b.get("type")) for b in branches} | {str(b.get("format")) for b in branches}


def plain_value(document: dict[str, Any], parameter: dict[str, Any]) -> Any:
    """A value the parameter takes: its example, its first choice, or something plain (the tenant aside)."""
    schema = resolve(document, parameter["schema"])
    for source in (parameter, schema):
        if source.get("examples"):
            return source["examples"][0]
        if "example" in source:
            return source["example"]
    if "enum" in schema:
        return schema["enum"][0]
    return 1 if "integer" in types_of(document, schema) else "nobody"


def parameter_of(document: dict[str, Any], parameter: dict[str, Any]) -> Parameter:
    kinds = frozenset(types_of(document, parameter["schema"]))
    required = bool(parameter.get("required"))
    return Parameter(parameter["in"], parameter["name"], required, kinds, plain_value(document, parameter))


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation that takes input (a path or query parameter, or a body)."""
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            params = tuple(
                parameter_of(document, p) for p in operation.get("parameters", []) if p["in"] in ("path", "query")
            )
            body = body_example(document, operation)
            fields = tuple(body_schema(document, operation).get("properties", {}))
            unexampled = tuple(f for f in fields if isinstance(body, dict) and f not in body)
            if (method, path) not in SKIPPED and (params or body is not None):
                found.append(Operation(method, path, params, body, unexampled))
    return found


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
    found = [Place(p.location, p.name, None, p.kinds) for p in operation.parameters]
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
    """A copy of ``document`` with the value at ``pointer`` (``/roles/kol/0``) replaced, or added with any object
    on the way that is missing."""
    if not pointer:
        return value
    head, _, rest = pointer[1:].partition("/")
    tail = f"/{rest}" if rest else ""
    if isinstance(document, list):
        index = int(head)
        return [replaced(item, tail, value) if i == index else item for i, item in enumerate(document)]
    base: dict[str, Any] = document if isinstance(document, dict) else {}
    return {**base, head: replaced(base.get(head), tail, value)}


def at(path: tuple[str | int, ...]) -> str:
    """The pointer :func:`replaced` takes for a path of keys and indexes."""
    return "".join(f"/{step}" for step in path)


def with_key(document: Any, pointer: str, key: str) -> Any:
    """A copy of ``document`` whose object at ``pointer`` has its first key renamed (or ``key`` added if empty)."""
    target: dict[str, Any] = dict(leaves(document))[pointer]
    first = next(iter(target), None)
    renamed = {(f"{k}{key}" if k == first else k): v for k, v in target.items()} if first else {key: 1}
    return replaced(document, pointer, renamed)


def request_of(operation: Operation, change: Hostile, tenant: str) -> tuple[str, dict[str, Any], bytes | None]:
    """The path, query and body of the operation's plain request with ``change`` made."""
    path, query = operation.path, {}
    for parameter in operation.parameters:
        name = parameter.name
        changed = (change.where, change.name) == (parameter.location, name)
        if parameter.location == "path":
            value = change.value if changed else parameter.value(tenant)
            path = path.replace(f"{{{name}}}", quote(str(value), safe=""))
        elif changed:
            query[name] = change.value
        elif parameter.required:
            query[name] = parameter.value(tenant)
    body = operation.body
    if change.where == "body":
        body = replaced(body, change.name, change.value)
    elif change.where == "key":
        body = with_key(body, change.name, change.value)
    content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    return path, query, content


UNCHANGED = Hostile("none", "", None, refused=False)
"""No change: the plain request each hostile one departs from."""


@dataclass
class Client:
    """An HTTP client to the service, with an admin key of a tenant of its own."""

    app: FastAPI
    http: httpx.AsyncClient
    tenant: str
    headers: dict[str, str]


@asynccontextmanager
async def hostile_client(service: str, stack: Stack) -> AsyncIterator[Client]:
    """The service's API running in this process on ``stack`` (its schema migrated; fresh topics), and a client with
    an admin key of a new tenant."""
    prefix = f"{stack.topic_prefix}hostile{uuid4().hex[:6]}."
    # Created, though the api role publishes nothing itself: what it queues in the schema's outbox is published by
    # whichever relay shares the schema (another test's), and a topic that does not exist would hold that relay up.
    await create_topics(stack.bootstrap_servers, TopicNames(prefix).all(), partitions=stack.partitions)
    async with running_service(service, stack, topic_prefix=prefix, role="api") as (app, http):
        tenant = f"t{uuid4().hex[:8]}"
        async with unit_of_work(app.state.runtime.sessions) as session:
            key = await issue_key(session, tenant=tenant, scopes=("admin",), name="hostile")
        yield Client(app, http, tenant, {"X-API-Key": key.plaintext, "Content-Type": "application/json"})


async def send(client: Client, operation: Operation, change: Hostile) -> httpx.Response:
    path, query, content = request_of(operation, change, client.tenant)
    # A path that ends in a slash once decoded ("%2F") is redirected to the route without it: followed.
    return await client.http.request(
        operation.method, path, params=query, content=content, headers=client.headers, follow_redirects=True
    )


class EveryOperation:
    """The tests every service's API passes, each for every operation of its OpenAPI that takes input.

    Subclass as ``TestEveryOperation`` in the service's test module, with ``document = openapi(build_spec)``; the
    module gives it a module-scoped ``client`` fixture (see :func:`hostile_client`). The tests are static: Hypothesis
    fails a ``@given`` method that runs on more than one instance, and pytest makes an instance for each test.
    """

    document: ClassVar[dict[str, Any]]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "operation" in metafunc.fixturenames:
            metafunc.parametrize("operation", operations(self.document), ids=str)

    @staticmethod
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

    @staticmethod
    async def test_every_place_refuses_every_kind_of_unstorable_value(client: Client, operation: Operation) -> None:
        """Each place of each operation, each kind once: the fuzzing above may not draw every pair in its examples."""
        for place in places(operation):
            for value in unstorable(place):
                change = Hostile(place.where, place.name, value, refused=True)
                response = await send(client, operation, change)
                status = response.status_code
                assert 400 <= status < 500, f"{operation} {change}: {status} {response.text}"
                assert response.json()["detail"], response.text

    @staticmethod
    async def test_the_plain_request_each_hostile_one_departs_from_is_not_refused_for_other_reasons(
        client: Client, operation: Operation
    ) -> None:
        """So a 4xx above is the hostile value's doing: the same request with nothing replaced is served (a 404 or
        409 is a plain answer about ids that do not exist or states, not a refusal of the input)."""
        response = await send(client, operation, UNCHANGED)
        assert response.status_code < 500, response.text
        # Neither malformed nor unauthorised: a 401/403 here would let every refusal above pass for the wrong reason.
        assert response.status_code not in (400, 401, 403, 422), f"{operation}: {response.text}"
