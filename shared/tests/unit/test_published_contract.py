"""The published contract (JSON Schemas and the AsyncAPI document in schemas/) matches the code's models."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from siyu_shared.events import asyncapi
from siyu_shared.events.envelope import CloudEvent
from siyu_shared.events.export import main as export_main
from siyu_shared.events.registry import all_specs, parse_data, spec_of
from siyu_shared.events.topics import PRODUCERS, SUBSCRIPTIONS, Topic, consumer_group_id
from siyu_shared.kafka.headers import dead_letter_headers, event_headers
from siyu_shared.services import SERVICES

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "schemas"


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


def test_asyncapi_document_is_valid_against_the_official_asyncapi_3_schema(asyncapi_3_schema: dict[str, Any]) -> None:
    doc = published_asyncapi()
    assert doc["asyncapi"] == "3.0.0", "validated against the 3.0.0 schema: fetch the schema of the new version"
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft7Validator(asyncapi_3_schema).iter_errors(doc)
    ]
    assert not errors, "\n".join(errors[:20])
    # The schema is not vacuous: a misspelt action is refused.
    broken = copy.deepcopy(doc)
    next(iter(broken["operations"].values()))["action"] = "consume"
    assert not Draft7Validator(asyncapi_3_schema).is_valid(broken)


def test_local_references_of_the_asyncapi_document_resolve() -> None:
    doc = published_asyncapi()

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [
                r for v in node.values() for r in refs(v)
            ]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        if ref.startswith("#/"):
            target: Any = doc
            for part in ref[2:].split("/"):
                target = target[part]
        else:
            assert (SCHEMAS / ref).is_file(), ref


def test_every_event_schema_is_a_valid_json_schema_of_its_draft() -> None:
    for path in sorted((SCHEMAS / "events").glob("*.json")):
        schema = orjson.loads(path.read_bytes())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path.name
        Draft202012Validator.check_schema(schema)


def test_every_type_has_an_example_valid_against_its_schema_and_parsed_by_its_model() -> None:
    messages = published_asyncapi()["components"]["messages"]
    for spec in all_specs():
        schema = orjson.loads((SCHEMAS / "events" / f"{spec.type_name}.json").read_bytes())
        [example] = schema["examples"]
        errors = list(Draft202012Validator(schema).iter_errors(example))
        assert not errors, (spec.type_name, [e.message for e in errors])
        event = CloudEvent.from_json(orjson.dumps(example))
        data = parse_data(event)
        assert type(data) is spec.model and event.type == spec.type_name
        assert data.model_dump(mode="json") == example["data"]
        # The AsyncAPI message shows the same event, with the headers the relay would send it with.
        [message_example] = messages[spec.type_name]["examples"]
        assert message_example["payload"] == example
        assert Draft7Validator(messages[spec.type_name]["headers"]).is_valid(message_example["headers"])
        assert message_example["headers"]["ce_id"] == event.id
        # The key is what the type declares, e.g. the payee of a statement.
        field = re.search(r"`data\.(\w+)`", spec.key)
        if field:
            assert event.subject == example["data"][field.group(1)], spec.type_name


def test_examples_are_refused_when_they_break_the_schema() -> None:
    schema = orjson.loads((SCHEMAS / "events" / "siyu.order.paid.json").read_bytes())
    example = copy.deepcopy(schema["examples"][0])
    example["data"]["amount_fen"] = -1
    assert not Draft202012Validator(schema).is_valid(example)


def test_declared_subscriptions_are_the_consumers_each_service_bootstraps() -> None:
    """The services read ``SUBSCRIPTIONS`` for their consumers: no service consumes outside the table."""
    declared: dict[str, dict[str, tuple[Topic, ...]]] = {}
    for service in SERVICES:
        spec = import_module(f"siyu_{service}.bootstrap").build_spec(
            database_url="postgresql+asyncpg://contract@localhost/contract", kafka_bootstrap_servers="localhost:9092"
        )
        if spec.consumers:
            declared[service] = {c.name: tuple(c.topics) for c in spec.consumers}
    assert declared == SUBSCRIPTIONS


def test_each_topics_producer_builds_its_event_types() -> None:
    """Each event type is constructed (``Name(`` or ``Name.model_validate(``) in the service that ``PRODUCERS``
    names for its topic and in no other: a consumer imports the models too, but never builds them."""
    sources = {s: "\n".join(p.read_text() for p in (ROOT / "services" / s / "src").rglob("*.py")) for s in SERVICES}
    for spec in all_specs():
        built = re.compile(rf"\b{spec.model.__name__}(\(|\.model_validate\()")
        builders = {service for service, text in sources.items() if built.search(text)}
        assert builders == {PRODUCERS[spec.topic]}, (spec.type_name, builders)


def test_operations_are_the_producers_sends_and_each_consumer_groups_receives() -> None:
    doc = published_asyncapi()
    by_address = {channel["address"]: name for name, channel in doc["channels"].items()}

    def ops(action: str, address: str) -> list[dict[str, Any]]:
        ref = f"#/channels/{by_address[address]}"
        return [o for o in doc["operations"].values() if o["action"] == action and o["channel"]["$ref"] == ref]

    for topic in Topic:
        [send] = ops("send", topic.value)
        assert PRODUCERS[topic] in send["summary"]
        groups = {tuple(o["bindings"]["kafka"]["groupId"]["enum"]) for o in ops("receive", topic.value)}
        expected = {
            (consumer_group_id("", service, consumer),)
            for service, consumers in SUBSCRIPTIONS.items()
            for consumer, topics in consumers.items()
            if topic in topics
        }
        assert groups == expected, topic
        dlq = f"{topic.value}.dlq"
        assert len(ops("send", dlq)) == len(expected)  # each consumer group dead-letters
        assert len(ops("receive", dlq)) == 1  # siyu-dlq replay


def test_dead_letter_channels_carry_one_untyped_message_with_the_runners_headers() -> None:
    doc = published_asyncapi()
    dead_letter = "#/components/messages/siyu.dead_letter"
    for channel in doc["channels"].values():
        if channel["address"].endswith(".dlq"):
            assert [m["$ref"] for m in channel["messages"].values()] == [dead_letter]
        else:
            assert dead_letter not in [m["$ref"] for m in channel["messages"].values()]
    message = doc["components"]["messages"]["siyu.dead_letter"]
    assert message["payload"]["type"] == "string"
    sent = dead_letter_headers(
        event_headers(event_id="e-1", event_type="siyu.order.paid", tenant="glowlab"),
        error=ValueError("x" * 5000),
        topic="orders.v1",
        partition=0,
        offset=7,
        group="siyu.attribution.main",
        attempts=4,
        failed_at=datetime.now(UTC),
    )
    as_documented = {name: value.decode() for name, value in sent}
    validator = Draft7Validator(message["headers"])
    assert validator.is_valid(as_documented)
    added = {name for name in as_documented if name.startswith("siyu-")}
    assert added == set(message["headers"]["required"]), "every siyu- header the runner adds is documented"
    assert not validator.is_valid({k: v for k, v in as_documented.items() if k != "siyu-error"})
    [example] = message["examples"]
    assert validator.is_valid(example["headers"])


def test_readme_topic_table_names_the_declared_producers_and_consumers() -> None:
    rows = {
        cells[0].strip("` "): cells
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `") and (cells := [c.strip() for c in line.strip("|").split("|")])
    }
    for topic in Topic:
        _, _, producer, consumers = rows[topic.value]
        assert producer == PRODUCERS[topic], topic
        readers = {s for s, c in SUBSCRIPTIONS.items() if any(topic in t for t in c.values())}
        assert set(consumers.split(", ")) - {"payroll and BI tools"} == readers, topic
