"""Request and response models of the segmentation API, and the examples its OpenAPI shows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from siyu_segmentation.domain.tagging import RuleBody
from siyu_segmentation.packs import shipped_packs
from siyu_shared.values import JsonObject, Text

PERSON = "0ffcac61-6a5a-57ea-9704-7facedd10830"


def field_example(model: type[BaseModel], name: str) -> Any:
    """The first example a model's field declares: an example built from it cannot drift from the field's."""
    examples = model.model_fields[name].examples
    assert examples, f"{model.__name__}.{name} declares no example"
    return examples[0]


RULE_EXAMPLE: dict[str, Any] = {
    "tag": field_example(RuleBody, "tag"),
    "family": field_example(RuleBody, "family"),
    "priority": 10,
    "description": "More than 10 orders in the last year.",
    "enabled": True,
    "when": field_example(RuleBody, "when"),
}


class RuleOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rule_id": "super-vip",
                    "version": 2,
                    "pack": None,
                    "body": RULE_EXAMPLE,
                    "time_dependent": True,
                    "updated_at": "2026-11-22T08:00:00Z",
                }
            ]
        }
    )

    rule_id: str
    version: int
    pack: str | None
    body: dict[str, Any]
    time_dependent: bool
    updated_at: datetime


class SavedRule(BaseModel):
    rule_id: str = Field(examples=["super-vip"])
    version: int = Field(examples=[2], description="The new version; 0 when the rule was deleted.")
    backfill_id: int = Field(description="The backfill that re-decides the tag for the whole tenant.", examples=[12])


class DryRun(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"gain": 2, "lose": 0, "sample_gain": [PERSON, "a8d1…"], "sample_lose": []}]}
    )

    gain: int
    lose: int
    sample_gain: list[str]
    sample_lose: list[str]


class FamilyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"exclusive": True, "description": "Value tier: one per person."}]},
    )

    exclusive: bool = Field(examples=[True])
    description: Text = Field(default="", max_length=500)


class MembersQuery(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"when": {"fact": "last_order_at", "older_than": "90d"}, "after": None, "limit": 100}]
        },
    )

    when: JsonObject = Field(description="A condition in the rule language (a rule's `when`).")
    after: Text | None = Field(default=None, max_length=64, description="The last person id of the previous page.")
    limit: int = Field(default=100, ge=1, le=10000)


class Installed(BaseModel):
    pack: str
    rules: list[str] = Field(description="The pack's rules, in the order they were saved.")
    backfill_id: int = Field(description="The backfill that decides the pack's tags for the whole tenant.")


class BackfillScope(BaseModel):
    rule_ids: list[str] = Field(description="The rules whose tags are re-decided.")
    drop_tags: list[str] = Field(default_factory=list, description="Tags no rule decides any more: removed.")


class Backfill(BaseModel):
    id: int
    tenant: str
    reason: str
    scope: BackfillScope
    status: Literal["pending", "running", "done", "cancelled"]
    total: int
    processed: int
    changed: int
    cursor: str | None = Field(description="The last person re-decided (people go in person id order).")
    cancel_requested: bool
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class CancelRequested(BaseModel):
    backfill_id: int
    cancel_requested: bool


class PersonTag(BaseModel):
    tag: str
    family: str | None
    rule_id: str
    rule_version: int
    tagged_at: datetime
    facts: dict[str, Any] = Field(description="The facts the rule read when it put the tag there.")


class Person(BaseModel):
    person_id: str
    facts: dict[str, Any]
    attributes: dict[str, Any]
    orders: int = Field(description="How many orders the person has.")
    tags: list[PersonTag]


class TagMember(BaseModel):
    person_id: str
    rule_id: str
    rule_version: int
    tagged_at: datetime


class TagMembers(BaseModel):
    members: list[TagMember]
    next_after: str | None = Field(description="Pass as `after` for the next page; null on the last page.")


class ConditionMembers(BaseModel):
    members: list[str]
    next_after: str | None = Field(description="Pass as `after` for the next page; null on the last page.")


class DailyCount(BaseModel):
    day: date
    tag: str
    members: int


class TagCounts(BaseModel):
    now: dict[str, int] = Field(description="Members per tag now.")
    daily: list[DailyCount] = Field(description="Members per tag per day, as snapshotted by the sweep.")


INSTALLED_EXAMPLE: dict[str, Any] = {
    "pack": "dcba",
    "rules": [rule.id for rule in shipped_packs()["dcba"].rules],
    "backfill_id": 12,
}
BACKFILL_EXAMPLE: dict[str, Any] = {
    "id": 12,
    "tenant": "glowlab",
    "reason": "rule super-vip v2",
    "scope": {"rule_ids": ["super-vip"], "drop_tags": []},
    "status": "running",
    "total": 20000,
    "processed": 5000,
    "changed": 312,
    "cursor": PERSON,
    "cancel_requested": False,
    "error": None,
    "started_at": "2026-11-22T08:00:00Z",
    "finished_at": None,
}
PERSON_EXAMPLE: dict[str, Any] = {
    "person_id": PERSON,
    "facts": {
        "first_channel": "xiaohongshu",
        "channels": ["tmall", "wecom", "xiaohongshu"],
        "wecom_status": "friend",
        "order_count": 2,
        "net_fen": 59800,
        "last_order_at": "2026-11-20T12:30:00+00:00",
    },
    "attributes": {"skin_type": "dry"},
    "orders": 2,
    "tags": [
        {
            "tag": "dcba_a_buying",
            "family": "dcba",
            "rule_id": "dcba-a",
            "rule_version": 1,
            "tagged_at": "2026-11-20T12:30:01Z",
            "facts": {"order_count": 2},
        }
    ],
}
TAG_MEMBERS_EXAMPLE: dict[str, Any] = {
    "members": [{"person_id": PERSON, "rule_id": "super-vip", "rule_version": 2, "tagged_at": "2026-11-22T08:00:05Z"}],
    "next_after": PERSON,
}
TAG_MEMBERS_CSV = f"person_id,rule_id,rule_version,tagged_at\r\n{PERSON},super-vip,2,2026-11-22T08:00:05+00:00\r\n"
CONDITION_MEMBERS_EXAMPLE: dict[str, Any] = {"members": [PERSON], "next_after": PERSON}
CONDITION_MEMBERS_CSV = f"person_id\r\n{PERSON}\r\n"
TAG_COUNTS_EXAMPLE: dict[str, Any] = {
    "now": {"dcba_a_buying": 58, "super_vip": 3},
    "daily": [
        {"day": "2026-11-21", "tag": "dcba_a_buying", "members": 55},
        {"day": "2026-11-21", "tag": "super_vip", "members": 3},
    ],
}
