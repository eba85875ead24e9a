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
PERSON = "0ffcac61-6a5a-57ea-9704-7facedd10830"


class JourneyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "journey_id": "greeting",
                    "version": 1,
                    "status": "published",
                    "definition": GREETING_EXAMPLE,
                    "updated_at": "2026-11-22T08:00:00Z",
                }
            ]
        }
    )

    journey_id: str
    version: int
    status: str
    definition: dict[str, Any]
    updated_at: datetime


class ValidationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"valid": False, "problems": ["step 'nudge': unknown template 'bye'"]}]}
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "person_id": PERSON,
                    "enrolments": [
                        {
                            "enrolment_id": "9b2f6c1e-5d0a-5a7e-8f43-2c1d0e9a7b65",
                            "journey_id": "greeting",
                            "version": 1,
                            "status": "completed",
                            "step_id": None,
                            "exit_reason": None,
                            "entered_at": "2026-11-22T08:00:00Z",
                        }
                    ],
                    "touches": [
                        {
                            "touch_id": "4e7d2a90-13c5-5b8e-9f61-7a0b3c2d1e4f",
                            "journey_id": "greeting",
                            "version": 1,
                            "step_id": "hello",
                            "channel": "wecom_1v1",
                            "status": "sent",
                            "reason": None,
                            "staff_id": "xwz_01",
                            "persona": "小完子",
                            "due_at": "2026-11-22T08:00:00Z",
                            "sent_at": "2026-11-22T08:00:02Z",
                        }
                    ],
                }
            ]
        }
    )

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
