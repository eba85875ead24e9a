"""The Kafka headers Siyu writes, named once for the code that writes them and for the AsyncAPI document.

Events travel in the CloudEvents Kafka binding's structured mode: the value is the whole envelope as JSON and
``content-type`` says so. The id, type and tenant are repeated as the binary mode's ``ce_`` headers (the binding
allows it in structured mode, §3.3.3) so a consumer can route or filter without parsing the value.
"""

from __future__ import annotations

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

Headers = list[tuple[str, bytes]]


def event_headers(*, event_id: str, event_type: str, tenant: str) -> Headers:
    """The headers of an event as the outbox relay publishes it."""
    return [
        (CONTENT_TYPE, STRUCTURED_JSON.encode()),
        (CE_ID, event_id.encode()),
        (CE_TYPE, event_type.encode()),
        (CE_TENANT, tenant.encode()),
    ]
