"""Request and response models of the journey API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

GREETING_EXAMPLE: dict[str, Any] = {
    "id": "greeting",
    "name": "加好友自动欢迎",
    "trigger": {"event": "contact.added"},
    "steps": [
        {"id": "hello", "kind": "send", "channel": "wecom_1v1", "template": "hello"},
    ],
    "templates": {"hello": "你好呀，我是{{ persona }}～"},
    "persona": "小完子",
}


class JourneyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"journey_id": "greeting", "version": 1}]})

    journey_id: str
    version: int
    status: str
    definition: dict[str, Any]
    updated_at: datetime


class ValidationOut(BaseModel):
    valid: bool
    problems: list[str] = Field(default_factory=list, examples=[["step 'nudge': unknown template 'bye'"]])


class EnrolmentOut(BaseModel):
    enrolment_id: str
    journey_id: str
    version: int
    status: str
    step_id: str | None
    exit_reason: str | None
    entered_at: datetime


class TouchOut(BaseModel):
    touch_id: str
    journey_id: str
    version: int
    step_id: str
    channel: str
    status: str
    reason: str | None
    staff_id: str | None
    persona: str | None
    due_at: datetime
    sent_at: datetime | None


class PersonHistoryOut(BaseModel):
    person_id: str
    enrolments: list[EnrolmentOut]
    touches: list[TouchOut]


class StepCountsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"journey_id": "greeting", "converted": 3, "steps": {"hello": {"sent": 10}}}]}
    )

    journey_id: str
    converted: int
    steps: dict[str, dict[str, int]]
