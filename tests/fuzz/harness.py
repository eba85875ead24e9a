"""A property-based fuzzer over a FastAPI app's own OpenAPI: no 5xx, every answer as documented.

Every operation of the document is fuzzed in three modes:

- ``positive``: requests the schema allows (schemathesis generates them from the OpenAPI);
- ``negative``: requests that violate the schema (schemathesis' negative generation: wrong types, out of range);
- ``hostile``: a positive request with one value (a path or query parameter, a body field, a body key) replaced by
  something Python and pydantic accept and the rest of the stack may not: NUL characters, integers beyond int64,
  years and UTC offsets outside what Postgres stores, a superscript digit, huge strings, lone surrogates.

Each answer must not be a 5xx, and must match the document (``status_code_conformance``,
``content_type_conformance``, ``response_headers_conformance``, ``response_schema_conformance``). Failures are
collected, not raised at the first one, so a run reports every distinct failure of every operation, each with the
smallest request that showed it and, for an unhandled exception, where it was raised.

Hypothesis runs in a worker thread; requests go to the app through ``httpx.ASGITransport`` on the caller's event
loop, where the app's runtime (database pool, Kafka producer, consumers) lives. Bounded by examples per mode and
seconds per operation; deterministic (``derandomize``) unless a seed is given.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Any]

MODES = ("positive", "negative", "hostile")
CHECK_NAMES = (
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)

INT64_MAX = 2**63 - 1
HOSTILE_TEXT: tuple[str, ...] = (
    "\x00",
    "a\x00b",
    "²",
    "9" * 5000,
    "0000-01",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59-14:00",
    "2026-01-01T00:00:00+23:30",
    "2026-01-01T00:00:00+14:01",
    "-1",
    "9223372036854775808",
    "",
)
HOSTILE_JSON_ONLY: tuple[Any, ...] = (
    INT64_MAX + 1,
    -(2**63) - 1,
    10**30,
    "\ud800",
    None,
    [],
    {},
    True,
    1e308,
    {"\x00": 1},
)
HOSTILE: tuple[Any, ...] = HOSTILE_TEXT + HOSTILE_JSON_ONLY


@dataclass(frozen=True)
class Profile:
    """How hard to fuzz: examples per operation and mode, seconds per operation, a seed (None: derandomized)."""

    examples: int
    seconds_per_operation: float
    seed: int | None = None

    @classmethod
    def from_env(cls) -> Profile:
        """``make test``: small and deterministic. ``make fuzz`` sets ``SIYU_FUZZ_EXAMPLES`` and friends."""
        raw_seed = os.environ.get("SIYU_FUZZ_SEED")
        return cls(
            examples=int(os.environ.get("SIYU_FUZZ_EXAMPLES", "10")),
            seconds_per_operation=float(os.environ.get("SIYU_FUZZ_SECONDS", "12")),
            seed=int(raw_seed) if raw_seed else None,
        )


@dataclass(frozen=True)
class Sent:
    """What went out and what came back, as a report shows it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    status: int | None
    response: str
    error: str | None = None

    @property
    def size(self) -> int:
        return len(self.url) + len(self.body or b"")

    def render(self) -> str:
        shown = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "x-siyu-origin")}
        text = "" if self.body is None else self.body.decode("utf-8", "backslashreplace")
        body = "" if self.body is None else f"\n      body: {_clip(text, 800)}"
        outcome = f"-> {self.status} {_clip(self.response, 400)}" if self.error is None else f"-> {self.error}"
        return f"{self.method} {_clip(self.url, 300)} {shown or ''}{body}\n      {outcome}"


@dataclass
class Finding:
    operation: str
    kind: str
    detail: str
    example: Sent
    count: int = 1


@dataclass
class Report:
    """Findings by (operation, kind), and how many requests each operation got per mode."""

    findings: dict[tuple[str, str], Finding] = field(default_factory=dict)
    sent: dict[str, dict[str, int]] = field(default_factory=dict)
    reached: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, operation: str, kind: str, detail: str, example: Sent) -> None:
        key = (operation, kind)
        found = self.findings.get(key)
        if found is None:
            self.findings[key] = Finding(operation, kind, detail, example)
            return
        found.count += 1
        if example.size < found.example.size:
            found.detail, found.example = detail, example

    def count(self, operation: str, mode: str, status: int | None) -> None:
        per_mode = self.sent.setdefault(operation, {})
        per_mode[mode] = per_mode.get(mode, 0) + 1
        seen = self.statuses.setdefault(operation, {})
        seen[status or 0] = seen.get(status or 0, 0) + 1
        if status is not None and status not in (401, 403):
            self.reached[operation] = self.reached.get(operation, 0) + 1

    def render(self) -> str:
        lines = []
        for (operation, kind), found in sorted(self.findings.items()):
            lines.append(f"- {operation}: {kind} (x{found.count})\n    {found.detail}\n    {found.example.render()}")
        return "\n".join(lines + self.notes)

    def coverage(self) -> str:
        """Per operation: requests per mode and answers per status (0: the app raised)."""
        return "\n".join(
            f"  {operation}: sent {self.sent[operation]}, answered {dict(sorted(self.statuses[operation].items()))}"
            for operation in sorted(self.sent)
        )


# A request about to be sent can be changed (signed, for instance) by the caller: method, url, headers, body.
Prepare = Callable[[Case, requests.PreparedRequest, str], requests.PreparedRequest]


@dataclass
class Target:
    """One app under fuzz: its OpenAPI, a client on it, the credentials to send, the fixed path parameters."""

    name: str
    openapi: dict[str, Any]
    client: httpx.AsyncClient
    loop: asyncio.AbstractEventLoop
    headers: dict[str, str]
    path_parameters: dict[str, str] = field(default_factory=dict)
    prepare: Prepare | None = None
    extra_strategies: dict[str, st.SearchStrategy[requests.PreparedRequest]] = field(default_factory=dict)
    """Per operation label: more requests to send beside the generated ones (for instance, signed webhooks)."""
    extra_weight: int = 1
    """Examples of an extra strategy, in multiples of the profile's examples per mode."""

    def operations(self) -> Iterator[Operation]:
        schema = schemathesis.openapi.from_dict(self.openapi)
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), f"the OpenAPI document has an invalid operation: {result}"
            yield result.ok()


class OutOfTime(Exception):
    """The operation's time budget is spent: stop generating (not a failure)."""


def fuzz(target: Target, profile: Profile) -> Report:
    """Fuzz every operation of ``target`` in every mode (blocking: call it in a worker thread)."""
    load_all_checks()
    checks = [CHECKS.get_one(name) for name in CHECK_NAMES]
    report = Report()
    for operation in target.operations():
        fixed = {k: v for k, v in target.path_parameters.items() if k in _path_parameter_names(operation)}
        extra = target.extra_strategies.get(operation.label)
        modes = MODES if extra is None else (*MODES, "extra")
        # Each mode has its own share of the budget, from its own start: a mode whose generation is slow (a
        # negative search that finds nothing to violate can take seconds) never starves the next one, so what is
        # sent does not depend on the machine's speed unless requests themselves exhaust a share.
        share = profile.seconds_per_operation / len(modes)
        for mode in modes:
            examples = profile.examples
            if mode == "extra":
                assert extra is not None
                strategy = extra.map(lambda prepared: Drawn(prepared=prepared))
                examples *= target.extra_weight
            elif mode == "hostile" and not _has_inputs(operation):
                continue  # nothing to poison: the positive request already said all there is
            elif mode == "negative" and not _negatable(operation, fixed):
                continue  # only free text in the path: no request violates the schema (and the search is slow)
            else:
                strategy = _strategy(operation, mode, fixed)
            budget = share * (target.extra_weight if mode == "extra" else 1)
            _run(target, examples, profile.seed, report, operation, mode, strategy, checks, time.monotonic() + budget)
        if not report.sent.get(operation.label):
            report.add(operation.label, "not fuzzed", "no request could be generated", _nothing(operation))
        elif not report.reached.get(operation.label):
            report.add(operation.label, "never reached", "every request was refused 401/403", _nothing(operation))
    return report


def _has_inputs(operation: Operation) -> bool:
    return bool(operation.definition.raw.get("parameters") or operation.definition.raw.get("requestBody"))


_UNCONSTRAINING = {"type", "title", "description", "examples", "example"}


def _negatable(operation: Operation, fixed: dict[str, str]) -> bool:
    """Whether some request can violate the operation's schema: a body, a query or header parameter (it can be
    left out or mistyped), or a path parameter that is more than free text."""
    if operation.definition.raw.get("requestBody"):
        return True
    for parameter in operation.definition.raw.get("parameters", []):
        if parameter.get("in") != "path":
            return True
        schema = parameter.get("schema", {})
        if parameter["name"] not in fixed and (schema.get("type") != "string" or set(schema) - _UNCONSTRAINING):
            return True
    return False


def _path_parameter_names(operation: Operation) -> set[str]:
    return {p["name"] for p in operation.definition.raw.get("parameters", []) if p.get("in") == "path"}


@dataclass(frozen=True)
class Drawn:
    """One request to send: a generated case (to validate the answer against), or one made by hand."""

    case: Case | None = None
    prepared: requests.PreparedRequest | None = None
    body: Callable[[Any], Any] | None = None
    """Applied to the case's JSON body once serialized (values no ``Case`` may hold, such as lone surrogates)."""


def _strategy(operation: Operation, mode: str, fixed: dict[str, str]) -> st.SearchStrategy[Drawn]:
    generation = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE
    cases = operation.as_strategy(generation_mode=generation, path_parameters=fixed or None)
    if mode != "hostile":
        return cases.map(lambda case: Drawn(case))
    return st.tuples(cases, st.integers(min_value=0, max_value=10**6), st.sampled_from(HOSTILE)).map(
        lambda drawn: _poison(drawn[0], drawn[1], drawn[2])
    )


def _poison(case: Case, pick: int, value: Any) -> Drawn:
    """``case`` with one value replaced by ``value``: a path or query parameter, a body leaf, or a body key."""
    # The fixed parameters too (a tenant with a NUL must be refused like any other): one spot among all.
    spots: list[tuple[str, Any]] = [("path", k) for k in (case.path_parameters or {})]
    spots += [("query", k) for k in (case.query or {})]
    if isinstance(case.body, dict | list):
        spots += [("body", path) for path in _json_paths(case.body)]
    elif operation_has_body(case):
        spots.append(("body", ()))
    if not spots:
        return Drawn(case)
    where, at = spots[pick % len(spots)]
    if where == "body":
        as_key = pick % 7 == 0
        return Drawn(case, body=lambda body: _replace(body, at, value, as_key=as_key))
    # A URL carries text: a JSON-only value goes as its JSON text, a lone surrogate (no URL can) as a NUL.
    text = value if isinstance(value, str) else json.dumps(value)
    if "\ud800" in text or not text:
        text = "\x00"
    container = dict((case.path_parameters if where == "path" else case.query) or {})
    container[at] = text
    if where == "path":
        case.path_parameters = container
    else:
        case.query = container
    return Drawn(case)


def operation_has_body(case: Case) -> bool:
    return case.media_type is not None


def _json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_paths(item, (*prefix, index))


def _replace(document: Any, path: tuple[Any, ...], value: Any, *, as_key: bool) -> Any:
    if not path:
        if as_key and isinstance(document, dict):
            key = value if isinstance(value, str) else "\x00"
            return {**document, key: "x"}
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: _replace(document[head], rest, value, as_key=as_key)}
    copy = list(document)
    copy[head] = _replace(copy[head], rest, value, as_key=as_key)
    return copy


def _run(
    target: Target,
    examples: int,
    seed: int | None,
    report: Report,
    operation: Operation,
    mode: str,
    strategy: st.SearchStrategy[Drawn],
    checks: list[Any],
    deadline: float,
) -> None:
    @settings(
        max_examples=examples,
        derandomize=seed is None,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
    )
    @given(drawn=strategy)
    def one(drawn: Drawn) -> None:
        if time.monotonic() > deadline:
            raise OutOfTime
        _exchange(target, report, operation, mode, drawn, checks)

    test = one if seed is None else hypothesis_seed(seed)(one)
    try:
        test()
    except OutOfTime:
        pass
    except Unsatisfiable:  # nothing to vary (no parameters), or no way to violate the schema: nothing to send
        pass
    except Exception as exc:  # the harness broke: that must fail the run, never pass silently
        detail = "".join(traceback.format_exception(exc))[-1500:]
        report.add(operation.label, f"harness error in {mode} mode: {type(exc).__name__}", detail, _nothing(operation))


def _exchange(
    target: Target,
    report: Report,
    operation: Operation,
    mode: str,
    drawn: Drawn,
    checks: list[Any],
) -> None:
    label = operation.label
    case, prepared = drawn.case, drawn.prepared
    if prepared is None:
        assert case is not None
        try:
            kwargs = case.as_transport_kwargs(base_url=str(target.client.base_url), headers=dict(target.headers))
            if drawn.body is not None and "json" in kwargs:
                kwargs["json"] = drawn.body(kwargs["json"])
            prepared = requests.Request(**_requests_kwargs(kwargs)).prepare()
        except Exception as exc:  # a value no client can send (a NUL in a header, say): nothing to test
            where = traceback.extract_tb(exc.__traceback__)[-1]
            note = f"- {label} [{mode}]: unsendable case skipped: {type(exc).__name__}: {exc} ({where.lineno})"
            if note not in report.notes:
                report.notes.append(note)
            return
        if target.prepare is not None:
            prepared = target.prepare(case, prepared, mode)
    else:
        for name, value in target.headers.items():
            prepared.headers.setdefault(name, value)
    raw = prepared.body
    body = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) or raw is None else b"?"
    method, url = str(prepared.method), str(prepared.url)
    headers = {k: _text(v) for k, v in prepared.headers.items() if k.lower() != "content-length"}
    future = asyncio.run_coroutine_threadsafe(
        target.client.request(method, url, headers=headers, content=body), target.loop
    )
    try:
        response = future.result(timeout=60)
    except Exception as exc:  # the app raised: ASGITransport hands us the exception the server would log as a 500
        sent = Sent(method, url, headers, body, None, "", error=_where(exc))
        report.count(label, mode, 500)
        report.add(label, f"5xx: unhandled {type(exc).__name__} at {_origin(exc)}", _clip(repr(exc), 300), sent)
        return
    sent = Sent(method, url, headers, body, response.status_code, response.text)
    report.count(label, mode, response.status_code)
    if response.status_code >= 500:
        report.add(label, f"5xx: {response.status_code}", _clip(response.text, 200), sent)
    if case is None:  # a request made by hand: its status must be documented all the same
        documented = set(operation.definition.raw.get("responses", {}))
        if str(response.status_code) not in documented and "default" not in documented:
            report.add(label, f"undocumented status {response.status_code}", f"documented: {sorted(documented)}", sent)
        return
    try:
        case.validate_response(response, checks=checks)
    except FailureGroup as group:
        for failure in group.exceptions:
            report.add(label, _kind(failure, response.status_code), _clip(_failure_text(failure), 500), sent)
    except Failure as failure:
        report.add(label, _kind(failure, response.status_code), _clip(_failure_text(failure), 500), sent)


def _requests_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    allowed = {"method", "url", "headers", "params", "data", "json", "cookies", "files"}
    out = {k: v for k, v in kwargs.items() if k in allowed}
    if "json" in out:  # serialized here, ASCII-escaped: a lone surrogate is valid JSON text, and worth sending
        out["data"] = json.dumps(out.pop("json")).encode()
        out["headers"] = {**out.get("headers", {}), "Content-Type": "application/json"}
    return out


def _kind(failure: Failure, status: int) -> str:
    title = failure.title
    if "status code" in title.lower() or type(failure).__name__ == "UndefinedStatusCode":
        return f"undocumented status {status}"
    return f"{title} ({status})"


def _failure_text(failure: Failure) -> str:
    return " ".join(str(failure.message).split())


def _origin(exc: BaseException) -> str:
    """The innermost frame of the project's own code (not of a library) where ``exc`` was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/siyu_" in f.filename and "site-packages" not in f.filename]
    if not (ours or frames):
        return "?"
    frame = (ours or frames)[-1]
    return f"{frame.filename.rsplit('/src/', 1)[-1]}:{frame.lineno} ({frame.name})"


def _where(exc: BaseException) -> str:
    return f"raised {type(exc).__name__}: {_clip(str(exc), 200)} at {_origin(exc)}"


def _nothing(operation: Operation) -> Sent:
    return Sent(operation.method.upper(), operation.path, {}, None, None, "")


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _clip(text: str, limit: int = 160) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + f"…(+{len(text) - limit})"
