"""The Kafka headers Siyu writes, named once for the code that writes them and for the AsyncAPI document.

Events travel in the CloudEvents Kafka binding's structured mode: the value is the whole envelope as JSON and
``content-type`` says so. The id, type and tenant are repeated as the binary mode's ``ce_`` headers (the binding
allows it in structured mode, §3.3.3) so a consumer can route or filter without parsing the value.

A dead-lettered message keeps the original key, value and headers and gains the ``siyu-`` headers below; replay
strips every ``siyu-`` header and adds ``siyu-replayed-from``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

CONTENT_TYPE = "content-type"
STRUCTURED_JSON = "application/cloudevents+json"
CE_ID = "ce_id"
CE_TYPE = "ce_type"
CE_TENANT = "ce_tenant"

EVENT_HEADERS: dict[str, str] = {
    CONTENT_TYPE: f"`{STRUCTURED_JSON}`: CloudEvents structured mode, the value is the whole envelope as JSON.",
    CE_ID: "The CloudEvents `id` (deduplicate on it).",
    CE_TYPE: "The CloudEvents `type`.",
    CE_TENANT: "The `tenant` extension: the brand the event belongs to.",
}

SIYU_PREFIX = "siyu-"
ERROR = "siyu-error"
ERROR_TYPE = "siyu-error-type"
ORIGINAL_TOPIC = "siyu-original-topic"
ORIGINAL_PARTITION = "siyu-original-partition"
ORIGINAL_OFFSET = "siyu-original-offset"
CONSUMER_GROUP = "siyu-consumer-group"
ATTEMPTS = "siyu-attempts"
FAILED_AT = "siyu-failed-at"
REPLAYED_FROM = "siyu-replayed-from"
ERROR_MAX_CHARS = 2000

DEAD_LETTER_HEADERS: dict[str, str] = {
    ERROR: f"The last error's message (at most {ERROR_MAX_CHARS} characters).",
    ERROR_TYPE: "The last error's exception class, e.g. `ValidationError` or `PoisonEvent`.",
    ORIGINAL_TOPIC: "The topic the message was consumed from.",
    ORIGINAL_PARTITION: "Its partition (decimal).",
    ORIGINAL_OFFSET: "Its offset (decimal).",
    CONSUMER_GROUP: "The consumer group that gave up on it.",
    ATTEMPTS: "How many times the handler was tried (decimal; 0 for a message that is not a valid event).",
    FAILED_AT: "When it was dead-lettered (ISO 8601, UTC).",
}

Headers = list[tuple[str, bytes]]


def event_headers(*, event_id: str, event_type: str, tenant: str) -> Headers:
    """The headers of an event as the outbox relay publishes it."""
    return [
        (CONTENT_TYPE, STRUCTURED_JSON.encode()),
        (CE_ID, event_id.encode()),
        (CE_TYPE, event_type.encode()),
        (CE_TENANT, tenant.encode()),
    ]


def without_siyu_headers(headers: Iterable[tuple[str, bytes]] | None) -> Headers:
    """The original headers of a dead-lettered or replayed message (every ``siyu-`` header dropped)."""
    return [(k, v) for k, v in (headers or ()) if not k.startswith(SIYU_PREFIX)]


def dead_letter_headers(
    original: Iterable[tuple[str, bytes]] | None,
    *,
    error: BaseException,
    topic: str,
    partition: int,
    offset: int,
    group: str,
    attempts: int,
    failed_at: datetime,
) -> Headers:
    """The headers of a dead letter: the original ones plus what failed, where and for whom."""
    return [
        *without_siyu_headers(original),
        (ERROR, str(error)[:ERROR_MAX_CHARS].encode()),
        (ERROR_TYPE, type(error).__name__.encode()),
        (ORIGINAL_TOPIC, topic.encode()),
        (ORIGINAL_PARTITION, str(partition).encode()),
        (ORIGINAL_OFFSET, str(offset).encode()),
        (CONSUMER_GROUP, group.encode()),
        (ATTEMPTS, str(attempts).encode()),
        (FAILED_AT, failed_at.isoformat().encode()),
    ]
