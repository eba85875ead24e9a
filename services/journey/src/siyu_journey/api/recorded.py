"""Touches staff make by hand, recorded by internal tools (a WeCom sidebar, a chat-archive sync).

A 1v1 chat or a group message by a staff member or a group activator is a touch too: attribution credits it
(touch-based models, and activity credit for group activators) and segmentation counts it. The tool posts it once
with its own id; a retry with the same id and body is answered 200 and changes nothing, a different body under the
same id is a 409. The touch goes out as ``siyu.touch.sent`` (kind ``staff`` or ``group``) through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field

from siyu_journey.adapters import recorded as store
from siyu_journey.domain import recorded as rules
from siyu_journey.domain.recorded import HandKind
from siyu_shared.events.catalog.touches import TouchChannel
from siyu_shared.events.registry import envelope
from siyu_shared.events.topics import TopicNames
from siyu_shared.http.deps import DbSession, Writer
from siyu_shared.http.errors import invalid
from siyu_shared.messaging.outbox import add_to_outbox
from siyu_shared.values import Text, Timestamp

SOURCE = "/siyu/journey/recorded"


class RecordedTouchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "sidebar-20261122-000123",
                    "person_id": "0ffcac61-6a5a-57ea-9704-7facedd10830",
                    "channel": "wecom_group",
                    "kind": "group",
                    "staff_id": "act_lily",
                    "occurred_at": "2026-11-22T08:15:00Z",
                }
            ]
        },
    )

    id: Text = Field(min_length=1, max_length=128, description="The tool's own id of the touch (idempotency key).")
    person_id: Text = Field(min_length=1, max_length=64)
    channel: TouchChannel
    kind: HandKind = Field(description="`staff`: a 1v1 staff member; `group`: a group activator.")
    staff_id: Text = Field(min_length=1, max_length=64)
    occurred_at: Timestamp = Field(description="When the touch was made, with its UTC offset (at most ±14:00).")


class RecordedTouchOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"touch_id": "2bdf193d-60f4-54b7-a656-e8b2fd43aa89", "recorded": True}]}
    )

    touch_id: str = Field(description="The touch id on `touches.v1` (derived from the tenant and the tool's id).")
    recorded: bool = Field(description="False when this id had been recorded before (a retry).")


def build_recorded_router(clock: Callable[[], datetime], topics: TopicNames) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["touches"])

    @router.post(
        "/touches",
        status_code=status.HTTP_201_CREATED,
        responses={
            200: {"description": "Already recorded with the same content"},
            409: {"description": "Same id, other content"},
        },
    )
    async def record_touch(
        touch: RecordedTouchIn, principal: Writer, session: DbSession, response: Response
    ) -> RecordedTouchOut:
        """Record a touch a staff member or group activator made by hand."""
        now = clock()
        try:
            row = rules.recorded_touch(
                tenant=principal.tenant,
                client_id=touch.id,
                person_id=touch.person_id,
                channel=touch.channel,
                kind=touch.kind,
                staff_id=touch.staff_id,
                occurred_at=touch.occurred_at,
                now=now,
            )
        except rules.FutureTouch as exc:
            raise invalid(loc=("body", "occurred_at"), msg=str(exc)) from exc
        before = await store.insert(session, row, recorded_at=now)
        if before is not None:
            if rules.again(before, row) is rules.Again.CONFLICT:
                raise HTTPException(409, detail=f"touch {touch.id!r} was recorded before with other content")
            response.status_code = status.HTTP_200_OK
            return RecordedTouchOut(touch_id=row.touch_id, recorded=False)
        data, event_id = rules.sent(row)
        event = envelope(
            data, tenant=row.tenant, subject=row.person_id, source=SOURCE, event_id=event_id, time=row.occurred_at
        )
        await add_to_outbox(session, event, topics=topics)
        return RecordedTouchOut(touch_id=row.touch_id, recorded=True)

    return router
