"""The AsyncAPI 3.0 document of every topic and event type, generated from the registry.

Payloads point at the JSON Schema files of ``schemas/events/`` so an internal tool can consume a topic without
reading Python.
"""

from __future__ import annotations

from typing import Any

from siyu_shared.events.examples import example_events, example_json
from siyu_shared.events.registry import EventSpec, all_specs
from siyu_shared.events.topics import DEFAULT_PARTITIONS, TOPIC_DESCRIPTIONS, Topic, TopicNames
from siyu_shared.kafka.headers import CE_TYPE, CONTENT_TYPE, EVENT_HEADERS, STRUCTURED_JSON, event_headers

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING = "0.5.0"


def asyncapi_document(*, schema_dir: str = "events", version: str = "1.0.0") -> dict[str, Any]:
    names = TopicNames()
    specs = all_specs()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in specs:
        messages[spec.type_name] = {
            "name": spec.type_name,
            "title": spec.type_name,
            "summary": spec.description,
            "contentType": STRUCTURED_JSON,
            "headers": event_headers_schema(spec),
            "payload": {"$ref": f"{schema_dir}/{spec.type_name}.json"},
            "examples": [example_message(spec)],
            "bindings": {
                "kafka": {"key": {"type": "string", "description": spec.key}, "bindingVersion": KAFKA_BINDING}
            },
        }
    for topic in Topic:
        of_topic = {s.type_name: {"$ref": f"#/components/messages/{s.type_name}"} for s in specs if s.topic is topic}
        key = topic.value.replace(".", "_")
        channels[key] = {
            "address": names.name(topic),
            "description": TOPIC_DESCRIPTIONS[topic],
            "messages": of_topic,
            "bindings": {"kafka": {"partitions": DEFAULT_PARTITIONS, "bindingVersion": KAFKA_BINDING}},
        }
        channels[f"{key}_dlq"] = {
            "address": names.dlq(topic),
            "description": (
                f"Dead letters of {names.name(topic)}: the original key, value and headers, plus `siyu-error`, "
                "`siyu-error-type`, `siyu-original-topic`, `siyu-original-partition`, `siyu-original-offset`, "
                "`siyu-consumer-group`, `siyu-attempts`, `siyu-failed-at`. Replay with `siyu-dlq replay`."
            ),
            "messages": {name: dict(ref) for name, ref in of_topic.items()},
        }
        operations[f"consume_{key}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"Consume {names.name(topic)} (one key's events in order).",
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Siyu events",
            "version": version,
            "description": (
                "Every event is a CloudEvents 1.0 JSON document with a `tenant` extension, sent in the CloudEvents "
                f"Kafka binding's structured mode (`{CONTENT_TYPE}: {STRUCTURED_JSON}`, with the id, type and tenant "
                "repeated in `ce_` headers). The Kafka key is the person id, except where a message's key binding says "
                "otherwise (closed statements are keyed by payee). Consumers must deduplicate on the "
                "CloudEvents `id` (delivery is at least once)."
            ),
        },
        "defaultContentType": STRUCTURED_JSON,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def event_headers_schema(spec: EventSpec) -> dict[str, Any]:
    """The Kafka headers of an event of this type as the outbox relay sends them (UTF-8 values)."""
    properties: dict[str, Any] = {name: {"type": "string", "description": d} for name, d in EVENT_HEADERS.items()}
    properties[CONTENT_TYPE]["const"] = STRUCTURED_JSON
    properties[CE_TYPE]["const"] = spec.type_name
    return {"type": "object", "required": list(EVENT_HEADERS), "properties": properties}


def example_message(spec: EventSpec) -> dict[str, Any]:
    """The example event of this type (``events/examples.py``) as a Kafka message: its headers and value."""
    event = example_events()[spec.type_name]
    headers = event_headers(event_id=event.id, event_type=event.type, tenant=event.tenant)
    return {
        "name": spec.type_name.removeprefix("siyu.").replace(".", "_"),
        "headers": {name: value.decode() for name, value in headers},
        "payload": example_json(spec.type_name),
    }
