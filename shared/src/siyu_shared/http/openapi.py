"""OpenAPI for what a route's return type does not describe: an example of a reply and its other media types, and
the refusals every route may answer (authentication, an unreadable body, an absent object, storage down)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from siyu_shared.http.deps import ErrorOut


def example_response(
    value: Any, *, status: int = 200, schema: dict[str, Any] | None = None, csv: str | bool = False
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route whose ``status`` reply is JSON like ``value``.

    ``schema`` only for a route without a response model (FastAPI merges this into the model's schema otherwise).
    ``csv``: the route also answers ``text/csv`` (with ``?format=csv``); a string is that reply's example.
    """
    json: dict[str, Any] = {"example": value} if schema is None else {"schema": schema, "example": value}
    content: dict[str, Any] = {"application/json": json}
    if csv is not False:
        content["text/csv"] = {"schema": {"type": "string"}} | ({"example": csv} if isinstance(csv, str) else {})
    return {status: {"content": content}}


def refusals(operation: dict[str, Any]) -> dict[int, str]:
    """What an operation may answer besides its own replies, read from the operation itself: FastAPI documents no
    response of a dependency (the API key's), nor the 400 it answers itself to a body that is not UTF-8."""
    found: dict[int, str] = {}
    if operation.get("security"):
        found[401] = "missing or invalid API key"
        found[403] = "the API key lacks the scope, or belongs to another tenant than the path names"
    if "requestBody" in operation:
        found[400] = "the body could not be read (it is not UTF-8 text)"
    if any(p.get("in") == "path" and p.get("name") != "tenant" for p in operation.get("parameters", ())):
        found[404] = "nothing of this id for the caller's tenant (another tenant's objects are reported absent)"
    found[503] = "storage unavailable: retry after the `Retry-After` seconds"
    return found


def document_refusals(app: FastAPI) -> None:
    """Make ``app.openapi()`` list, on every operation, the :func:`refusals` it may answer (as :class:`ErrorOut`),
    beside what its route documents itself."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        document.setdefault("components", {}).setdefault("schemas", {}).setdefault(
            "ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        reply = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for path in document.get("paths", {}).values():
            for operation in path.values():
                for status, description in refusals(operation).items():
                    operation["responses"].setdefault(str(status), {"description": description, "content": reply})
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document
