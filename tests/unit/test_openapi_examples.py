"""Every service's API is in OpenAPI with examples (the handbook's quality bar), and no example has rotted.

The documents are each app's own ``/openapi.json`` as ``siyu-<service> serve --role api`` publishes it, built
without a database or Kafka (OpenAPI comes from the routes; the lifespan that connects never runs).

The rule, for every operation of every service:

- A JSON request body (``application/json`` or ``*+json``) has an example: ``example``/``examples`` on the media
  type, or on its schema after following ``$ref`` (e.g. a model's ``json_schema_extra={"examples": [...]}``).
- A 2xx JSON response has an example in the same places, or a schema exemplified all the way down: an object
  whose every property is exemplified, an array whose items are, a union whose every non-null branch is
  (following ``$ref`` at each step; a property is exemplified by ``Field(examples=...)`` or by its model's
  examples).
- Every example anywhere in the document is valid: a media type's examples against the media type's schema, a
  schema's ``examples``/``example`` (models, properties, parameters) against that schema, as JSON Schema 2020-12
  (OpenAPI 3.1's dialect) with ``$ref`` resolved in the document's components. One allowance: FastAPI drops every
  null from the examples it publishes (fastapi/fastapi#5559), so a required property whose schema admits null may
  be absent from an example.

Exempt: ``GET /metrics`` (Prometheus text, not JSON). Other non-JSON media (the webhook's WeCom XML, CSV uploads
and report downloads) are not required to carry examples, but any example they do carry is validated.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from importlib import import_module
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from siyu_shared.app import create_app
from siyu_shared.services import SERVICES

EXEMPT = {("get", "/metrics")}
SHARED_PATHS = {"/healthz", "/readyz", "/metrics", "/v1/tenants/{tenant}/api-keys"}
DOCUMENT = "urn:siyu:openapi"
# Keywords whose value is one subschema, a map of subschemas, or a list of subschemas (JSON Schema 2020-12).
ONE = ("items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else")
MANY = ("properties", "patternProperties", "$defs")
LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


@cache
def openapi(service: str) -> dict[str, Any]:
    """The service's OpenAPI document (settings pointed nowhere: nothing connects)."""
    build_spec = import_module(f"siyu_{service}.bootstrap").build_spec
    spec = build_spec(database_url="postgresql://nobody@127.0.0.1:1/none", kafka_bootstrap_servers="127.0.0.1:1")
    document: dict[str, Any] = create_app(spec, role="api").openapi()
    return document


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch"} and (method, path) not in EXEMPT:
                yield method, path, operation


def is_json(media_type: str) -> bool:
    essence = media_type.split(";")[0].strip()
    return essence == "application/json" or essence.endswith("+json")


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/components/schemas/"), ref
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def has_example(node: dict[str, Any]) -> bool:
    return "example" in node or bool(node.get("examples"))


def exemplified(doc: dict[str, Any], schema: dict[str, Any], seen: frozenset[str] = frozenset()) -> bool:
    """The schema (after ``$ref``) has examples, or is exemplified all the way down (see the module docstring)."""
    ref = schema.get("$ref")
    if ref in seen:
        return False
    if ref is not None:
        seen |= {ref}
    schema = resolve(doc, schema)
    if has_example(schema):
        return True
    if branches := schema.get("anyOf") or schema.get("oneOf"):
        real = [b for b in branches if b.get("type") != "null"]
        return bool(real) and all(exemplified(doc, b, seen) for b in real)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return exemplified(doc, schema["items"], seen)
    properties = schema.get("properties")
    return bool(properties) and all(exemplified(doc, p, seen) for p in properties.values())


def examples_of(node: dict[str, Any]) -> list[Any]:
    """The example values a media type or schema carries: ``example``, ``examples`` as a JSON Schema list, or
    ``examples`` as an OpenAPI map of named Example Objects (``{"value": ...}``)."""
    found = [node["example"]] if "example" in node else []
    examples = node.get("examples")
    if isinstance(examples, list):
        found.extend(examples)
    elif isinstance(examples, dict):
        found.extend(example["value"] for example in examples.values() if "value" in example)
    return found


def schemas_in(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The schema and every subschema in it, each with where it is."""
    if not isinstance(schema, dict):
        return
    yield where, schema
    for key in ONE:
        yield from schemas_in(schema.get(key), f"{where}/{key}")
    for key in MANY:
        for name, sub in (schema.get(key) or {}).items():
            yield from schemas_in(sub, f"{where}/{key}/{name}")
    for key in LISTS:
        for i, sub in enumerate(schema.get(key) or []):
            yield from schemas_in(sub, f"{where}/{key}/{i}")


def validator(schema: dict[str, Any], registry: Registry[Any]) -> Draft202012Validator:
    """A validator of ``schema`` whose ``#/components/...`` references point into the document."""

    def anchored(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: DOCUMENT + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else anchored(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [anchored(v) for v in node]
        return node

    return Draft202012Validator(anchored(schema), registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def examples_with_schemas(doc: dict[str, Any]) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(where, example, schema) for every example in the document."""
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        for where, sub in schemas_in(schema, f"components/schemas/{name}"):
            yield from ((where, example, sub) for example in examples_of(sub))
    for method, path, operation in operations(doc):
        at = f"{method.upper()} {path}"
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            for example in examples_of(parameter):
                yield f"{at} parameter {parameter['name']}", example, schema
            for where, sub in schemas_in(schema, f"{at} parameter {parameter['name']}"):
                yield from ((where, example, sub) for example in examples_of(sub))
        media = [("request", mt, m) for mt, m in operation.get("requestBody", {}).get("content", {}).items()]
        for code, response in operation["responses"].items():
            media += [(code, mt, m) for mt, m in response.get("content", {}).items()]
        for part, media_type, content in media:
            schema = content.get("schema", {})
            for example in examples_of(content):
                yield f"{at} {part} {media_type}", example, schema
            for where, sub in schemas_in(schema, f"{at} {part} {media_type} schema"):
                yield from ((where, example, sub) for example in examples_of(sub))


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_has_examples(service: str) -> None:
    doc = openapi(service)
    missing: list[str] = []
    for method, path, operation in operations(doc):
        at = f"{method.upper()} {path}"
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            schema = resolve(doc, content.get("schema", {}))
            if is_json(media_type) and not (has_example(content) or has_example(schema)):
                missing.append(f"{at}: request body {media_type}")
        for code, response in operation["responses"].items():
            if not code.startswith("2"):
                continue
            for media_type, content in response.get("content", {}).items():
                schema = content.get("schema", {})
                if is_json(media_type) and not (has_example(content) or exemplified(doc, schema)):
                    missing.append(f"{at}: response {code} {media_type}")
    assert not missing, f"{service}: no example for\n" + "\n".join(missing)


def nulls_may_be_absent(node: Any) -> Any:
    """A copy of the document where a required property that admits null is optional (see the module docstring)."""
    if isinstance(node, list):
        return [nulls_may_be_absent(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: nulls_may_be_absent(v) for k, v in node.items()}
    properties = node.get("properties")
    if isinstance(properties, dict) and isinstance(node.get("required"), list):
        out["required"] = [name for name in node["required"] if not admits_null(properties.get(name, {}))]
    return out


def admits_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return (
        kind == "null"
        or (isinstance(kind, list) and "null" in kind)
        or any(admits_null(b) for b in schema.get("anyOf", []) + schema.get("oneOf", []))
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_example_is_valid_against_its_schema(service: str) -> None:
    doc = nulls_may_be_absent(openapi(service))
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT, Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    invalid: list[str] = []
    count = 0
    for where, example, schema in examples_with_schemas(doc):
        count += 1
        for error in validator(schema, registry).iter_errors(example):
            path = "/".join(str(p) for p in error.absolute_path)
            invalid.append(f"{where}: {example!r:.80} at /{path}: {error.message[:200]}")
    assert count > 0
    assert not invalid, f"{service}: invalid examples\n" + "\n".join(invalid)


@pytest.mark.parametrize("service", SERVICES)
def test_every_app_documents_the_shared_routes(service: str) -> None:
    assert set(openapi(service)["paths"]) >= SHARED_PATHS


def test_ingest_documents_its_routes_each_channel_body_and_the_webhook_failures() -> None:
    paths = openapi("ingest")["paths"]
    assert {
        "/v1/webhooks/{tenant}/{channel}",
        "/v1/tenants/{tenant}/channels/{channel}",
        "/v1/tenants/{tenant}/deliveries",
        "/v1/tenants/{tenant}/deliveries/{delivery_id}/reprocess",
        "/v1/tenants/{tenant}/imports",
        "/v1/tenants/{tenant}/persons/{person_id}/erasure",
    } <= set(paths)
    webhook = paths["/v1/webhooks/{tenant}/{channel}"]["post"]
    assert {"xiaohongshu", "douyin", "oceanengine", "tmall", "doudian"} <= set(
        webhook["requestBody"]["content"]["application/json"]["examples"]
    )
    assert {"400", "401", "404", "413", "503"} <= set(webhook["responses"])
    verification = paths["/v1/webhooks/{tenant}/{channel}"]["get"]["responses"]
    assert {"oceanengine"} <= set(verification["200"]["content"]["application/json"]["examples"])
    assert {"douyin", "doudian", "tmall", "xiaohongshu"} <= set(
        verification["405"]["content"]["application/json"]["examples"]
    )
