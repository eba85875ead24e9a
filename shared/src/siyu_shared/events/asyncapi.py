"""The AsyncAPI 3.0 document of every topic and event type, generated from the registry.

Payloads point at the JSON Schema files of ``schemas/events/`` so an internal tool can consume a topic without
reading Python. Operations: the producer of each topic (``topics.PRODUCERS``) sends, each consumer group of the
services (``topics.SUBSCRIPTIONS``) receives and dead-letters, ``siyu-dlq replay`` reads the dead letters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from siyu_shared.events.examples import example_events, example_json
from siyu_shared.events.registry import EventSpec, all_specs
from siyu_shared.events.topics import (
    DEFAULT_PARTITIONS,
    PRODUCERS,
    SUBSCRIPTIONS,
    TOPIC_DESCRIPTIONS,
    Topic,
    TopicNames,
    consumer_group_id,
)
from siyu_shared.kafka.dlq import replay_group_id
from siyu_shared.kafka.headers import (
    CE_TYPE,
    CONTENT_TYPE,
    DEAD_LETTER_HEADERS,
    EVENT_HEADERS,
    REPLAYED_FROM,
    STRUCTURED_JSON,
    dead_letter_headers,
    event_headers,
)

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING = "0.5.0"
DEAD_LETTER = "siyu.dead_letter"


def asyncapi_document(*, schema_dir: str = "events", version: str = "1.0.0") -> dict[str, Any]:
    names = TopicNames()
    specs = all_specs()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {
        spec.type_name: {
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
        for spec in specs
    }
    messages[DEAD_LETTER] = dead_letter_message()
    partitions = {"kafka": {"partitions": DEFAULT_PARTITIONS, "bindingVersion": KAFKA_BINDING}}
    for topic in Topic:
        key, dlq_key = _channel_key(topic), _channel_key(topic) + "_dlq"
        of_topic = [s.type_name for s in specs if s.topic is topic]
        channels[key] = {
            "address": names.name(topic),
            "description": TOPIC_DESCRIPTIONS[topic],
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in of_topic},
            "bindings": partitions,
        }
        channels[dlq_key] = {
            "address": names.dlq(topic),
            "description": (
                f"Dead letters of {names.name(topic)}: whatever a consumer of it gave up on, as it was (any bytes: "
                "not necessarily a valid event), with the `siyu-` headers saying why. Replay with "
                f"`siyu-dlq replay --topic {names.name(topic)}`."
            ),
            "messages": {DEAD_LETTER: {"$ref": f"#/components/messages/{DEAD_LETTER}"}},
            "bindings": partitions,
        }
        producer = PRODUCERS[topic]
        operations[f"{producer}_publishes_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"{producer} publishes {names.name(topic)} through its transactional outbox and relay.",
            "messages": [{"$ref": f"#/channels/{key}/messages/{name}"} for name in of_topic],
        }
        for service, consumers in SUBSCRIPTIONS.items():
            for consumer, topics in consumers.items():
                if topic not in topics:
                    continue
                group = consumer_group_id("", service, consumer)
                operations[f"{service}_{consumer}_receives_{key}"] = {
                    "action": "receive",
                    "channel": {"$ref": f"#/channels/{key}"},
                    "summary": (
                        f"{service} reads {names.name(topic)} as consumer group `{group}` (one key's events in order; "
                        "duplicates absorbed by its inbox)."
                    ),
                    "bindings": {
                        "kafka": {"groupId": {"type": "string", "enum": [group]}, "bindingVersion": KAFKA_BINDING}
                    },
                }
                operations[f"{service}_{consumer}_dead_letters_{key}"] = {
                    "action": "send",
                    "channel": {"$ref": f"#/channels/{dlq_key}"},
                    "summary": f"{service} (`{group}`) dead-letters what it could not handle from {names.name(topic)}.",
                }
        replay_group = replay_group_id(names.dlq(topic))
        operations[f"replay_{dlq_key}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{dlq_key}"},
            "summary": (
                f"`siyu-dlq replay` reads {names.dlq(topic)} and puts each message back on {names.name(topic)} with "
                f"its original headers plus `{REPLAYED_FROM}`."
            ),
            "bindings": {
                "kafka": {"groupId": {"type": "string", "enum": [replay_group]}, "bindingVersion": KAFKA_BINDING}
            },
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
                "CloudEvents `id` (delivery is at least once). A deployment may put a prefix before every topic and "
                "consumer group name (`KAFKA_TOPIC_PREFIX`)."
            ),
        },
        "defaultContentType": STRUCTURED_JSON,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _channel_key(topic: Topic) -> str:
    return topic.value.replace(".", "_")


def event_headers_schema(spec: EventSpec) -> dict[str, Any]:
    """The Kafka headers of an event of this type as the outbox relay sends them (UTF-8 values)."""
    properties: dict[str, Any] = {name: {"type": "string", "description": d} for name, d in EVENT_HEADERS.items()}
    properties[CONTENT_TYPE]["const"] = STRUCTURED_JSON
    properties[CE_TYPE]["const"] = spec.type_name
    properties[REPLAYED_FROM] = {
        "type": "string",
        "description": "Only on a message `siyu-dlq replay` put back: the dead-letter topic it came from.",
    }
    return {"type": "object", "required": list(EVENT_HEADERS), "properties": properties}


def dead_letter_message() -> dict[str, Any]:
    """The one message of every dead-letter topic: the bytes that failed, with why in the ``siyu-`` headers."""
    properties: dict[str, Any] = {name: {"type": "string", "description": d} for name, d in DEAD_LETTER_HEADERS.items()}
    example = example_events()["siyu.order.paid"]
    original = event_headers(event_id=example.id, event_type=example.type, tenant=example.tenant)
    failed = ValueError("order tmall:3318872651409876 names no known tenant plan")
    headers = dead_letter_headers(
        original,
        error=failed,
        topic="orders.v1",
        partition=3,
        offset=18204,
        group="siyu.attribution.main",
        attempts=4,
        failed_at=datetime(2026, 5, 20, 12, 15, 2, tzinfo=UTC),
    )
    return {
        "name": DEAD_LETTER,
        "title": "Dead letter",
        "summary": "A message a consumer gave up on, exactly as it was consumed, with why in `siyu-` headers.",
        "description": (
            "The value is the original bytes (usually an event of the original topic, but anything a consumer could "
            "not handle lands here: undecodable JSON, an unknown type, an event its handler kept failing on). The "
            "original headers are kept (`content-type`, `ce_id`, `ce_type`, `ce_tenant` when the relay sent it) and "
            "the `siyu-` headers are added."
        ),
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": list(DEAD_LETTER_HEADERS),
            "properties": properties,
            "additionalProperties": {"type": "string", "description": "A header of the original message."},
        },
        "payload": {"type": "string", "format": "binary", "description": "The bytes that failed, unchanged."},
        "examples": [
            {
                "name": "order_paid_failed",
                "headers": {name: value.decode() for name, value in headers},
                "payload": example.to_json().decode(),
            }
        ],
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original message's key, unchanged."},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def example_message(spec: EventSpec) -> dict[str, Any]:
    """The example event of this type (``events/examples.py``) as a Kafka message: its headers and value."""
    event = example_events()[spec.type_name]
    headers = event_headers(event_id=event.id, event_type=event.type, tenant=event.tenant)
    return {
        "name": spec.type_name.removeprefix("siyu.").replace(".", "_"),
        "headers": {name: value.decode() for name, value in headers},
        "payload": example_json(spec.type_name),
    }
