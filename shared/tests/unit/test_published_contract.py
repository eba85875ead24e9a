"""The published contract (JSON Schemas and the AsyncAPI document in schemas/) matches the code's models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from jsonschema import Draft7Validator

from siyu_shared.events import asyncapi
from siyu_shared.events.export import main as export_main
from siyu_shared.events.registry import all_specs, spec_of
from siyu_shared.events.topics import Topic
from siyu_shared.kafka.headers import event_headers

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def published_asyncapi() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())
    return doc


def test_published_files_are_generated_from_the_current_models() -> None:
    args = ["--out", str(SCHEMAS / "events"), "--asyncapi", str(SCHEMAS / "asyncapi.yaml"), "--check"]
    assert export_main(args) == 0, "run: make schemas"


def test_asyncapi_lists_every_event_type_on_its_topic_with_a_resolvable_schema() -> None:
    doc = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    by_address = {channel["address"]: channel for channel in doc["channels"].values()}
    for topic in Topic:
        assert topic.value in by_address and f"{topic.value}.dlq" in by_address
    for spec in all_specs():
        channel = by_address[spec.topic.value]
        assert spec.type_name in channel["messages"], spec.type_name
        message = doc["components"]["messages"][spec.type_name]
        schema_file = SCHEMAS / message["payload"]["$ref"]
        schema = orjson.loads(schema_file.read_bytes())
        assert schema["properties"]["type"] == {"const": spec.type_name}
        assert set(spec.model.model_fields) <= set(schema["properties"]["data"]["properties"])


def test_channels_document_the_partition_count_topics_are_created_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncapi, "DEFAULT_PARTITIONS", 12)
    doc = asyncapi.asyncapi_document()
    partitions = {c["bindings"]["kafka"]["partitions"] for c in doc["channels"].values() if "bindings" in c}
    assert partitions == {12}


def test_every_message_documents_the_headers_the_relay_sends() -> None:
    messages = published_asyncapi()["components"]["messages"]
    for spec in all_specs():
        sent = event_headers(event_id="e-1", event_type=spec.type_name, tenant="glowlab")
        schema = messages[spec.type_name]["headers"]
        validator = Draft7Validator(schema)
        as_documented = {name: value.decode() for name, value in sent}
        assert not list(validator.iter_errors(as_documented)), spec.type_name
        assert set(schema["required"]) == set(as_documented), "every header sent is documented and required"
        assert as_documented["content-type"] == messages[spec.type_name]["contentType"]
        assert not validator.is_valid({**as_documented, "ce_type": "siyu.other.type"})


def test_each_message_documents_the_key_its_type_declares() -> None:
    doc = published_asyncapi()
    for spec in all_specs():
        key = doc["components"]["messages"][spec.type_name]["bindings"]["kafka"]["key"]
        assert key["description"] == spec.key, spec.type_name
        schema = orjson.loads((SCHEMAS / "events" / f"{spec.type_name}.json").read_bytes())
        assert schema["properties"]["subject"]["description"] == spec.key, spec.type_name
    # Statements are keyed by payee (attribution's accounting.close_period), not by person.
    assert "payee_id" in spec_of("siyu.statement.closed").key
    assert spec_of("siyu.statement.closed").key != spec_of("siyu.order.paid").key
