"""OpenAPI for a reply the route's return type does not describe: an example of it, and its other media types."""

from __future__ import annotations

from typing import Any


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
