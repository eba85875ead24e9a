"""CloudEvents 1.0 envelope in structured JSON mode, with Siyu's ``tenant`` extension.

The envelope is what travels on Kafka (value = the JSON document, key = the ``subject``: the person id, or what the
event type's registry entry declares). Its ``id`` is fixed when the event is written to the outbox, so it stays the
same across publish retries and redeliveries; consumers deduplicate on it (the inbox).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from siyu_shared.ids import url_ids
from siyu_shared.values import TENANT_PATTERN, check_datetime

SPEC_VERSION: Literal["1.0"] = "1.0"
CONTENT_TYPE = "application/json"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode event; ``data`` is the event type's payload as plain JSON."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    specversion: Literal["1.0"] = SPEC_VERSION
    id: str = Field(min_length=1, max_length=200, examples=["0b9c0c0e-2f4e-4c1e-9a52-8d2d8f3f9a10"])
    source: str = Field(min_length=1, examples=["/siyu/ingest"])
    type: str = Field(min_length=1, pattern=r"^siyu\.[a-z_]+\.[a-z_]+$", examples=["siyu.order.paid"])
    time: datetime
    subject: str | None = Field(
        default=None, description="What the event is about, and its Kafka key (see the event type's key)."
    )
    tenant: str = Field(pattern=TENANT_PATTERN, description="The brand the event belongs to.")
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    data: dict[str, Any]

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return check_datetime(value).astimezone(UTC)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_json(cls, raw: bytes | str) -> CloudEvent:
        return cls.model_validate(orjson.loads(raw))

    @property
    def key(self) -> bytes | None:
        """The Kafka key: the subject (the person id for most types), so one person's events stay ordered."""
        return self.subject.encode() if self.subject else None


def new_event_id() -> str:
    return str(uuid.uuid4())


def deterministic_event_id(*parts: str) -> str:
    """An id derived from what caused the event, so the same cause never yields two different events."""
    return url_ids("siyu:" + "/".join(parts))
