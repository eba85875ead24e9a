"""JSON Schema for every event type and the AsyncAPI document, exported to files.

    siyu-schemas --out schemas/events --asyncapi schemas/asyncapi.yaml [--check]

`--check` compares the files with the models and fails when they differ, so the published schemas can never
drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

from siyu_shared.events.asyncapi import asyncapi_document
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.examples import example_json
from siyu_shared.events.registry import EventSpec, all_specs

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def event_schema(spec: EventSpec) -> dict[str, Any]:
    """The schema of a whole CloudEvent of this type: the envelope with `data` replaced by the payload schema."""
    envelope = CloudEvent.model_json_schema()
    payload = spec.model.model_json_schema(ref_template="#/$defs/{model}")
    defs = {**envelope.pop("$defs", {}), **payload.pop("$defs", {})}
    envelope["properties"]["type"] = {"const": spec.type_name}
    envelope["properties"]["subject"]["description"] = spec.key
    envelope["properties"]["data"] = payload
    return {
        "$schema": DRAFT,
        "$id": spec.schema_uri,
        "title": spec.type_name,
        "description": spec.description,
        "x-topic": spec.topic.value,
        **{k: v for k, v in envelope.items() if k not in {"title", "description"}},
        **({"$defs": defs} if defs else {}),
        "examples": [example_json(spec.type_name)],
    }


def render_all() -> dict[str, bytes]:
    """File name → JSON bytes for every registered event type."""
    return {
        f"{spec.type_name}.json": orjson.dumps(event_schema(spec), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        + b"\n"
        for spec in all_specs()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="siyu-schemas", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory for the schema files")
    parser.add_argument("--asyncapi", type=Path, help="also write the AsyncAPI document to this file")
    parser.add_argument("--check", action="store_true", help="fail if the files differ from the models")
    args = parser.parse_args(argv)
    rendered = render_all()
    out: Path = args.out
    asyncapi: bytes | None = None
    if args.asyncapi is not None:
        schema_dir = str(out.resolve().relative_to(args.asyncapi.resolve().parent))
        asyncapi = yaml.safe_dump(
            asyncapi_document(schema_dir=schema_dir), sort_keys=False, allow_unicode=True
        ).encode()
    if args.check:
        stale = [
            name for name, body in rendered.items() if not (out / name).exists() or (out / name).read_bytes() != body
        ]
        extra = sorted({p.name for p in out.glob("*.json")} - set(rendered))
        for name in stale:
            print(f"out of date: {out / name}", file=sys.stderr)
        for name in extra:
            print(f"no such event type: {out / name}", file=sys.stderr)
        asyncapi_stale = asyncapi is not None and (not args.asyncapi.exists() or args.asyncapi.read_bytes() != asyncapi)
        if asyncapi_stale:
            print(f"out of date: {args.asyncapi}", file=sys.stderr)
        return 1 if stale or extra or asyncapi_stale else 0
    out.mkdir(parents=True, exist_ok=True)
    for name, body in rendered.items():
        (out / name).write_bytes(body)
    if asyncapi is not None:
        args.asyncapi.write_bytes(asyncapi)
    print(f"wrote {len(rendered)} schemas to {out}" + (f" and {args.asyncapi}" if asyncapi is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
