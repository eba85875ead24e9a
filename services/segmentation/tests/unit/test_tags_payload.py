"""The batch path's directly built `tags.changed` JSON is the envelope's JSON, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from siyu_segmentation.adapters.tags import tags_changed_event, tags_changed_payload
from siyu_segmentation.domain.tagging import Decision, TagDiff

GAINED = Decision("a_buyer", "dcba", "buyer", 3)
LOST = Decision("group_eligible", None, "group", 1)


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
        datetime(2026, 11, 20, 12, 0, 0, 123000, tzinfo=UTC),
        datetime(2026, 11, 20, 20, 0, 0, 1, tzinfo=timezone(timedelta(hours=8))),
    ],
)
@pytest.mark.parametrize("cause", ["0b7f-event-id", "backfill:12"])
def test_the_direct_payload_is_the_envelope_json(now: datetime, cause: str) -> None:
    change = TagDiff(added=(GAINED,), removed=(LOST,), tags=("a_buyer", "dry_skin"))
    facts = {"sum(orders.net_fen)@8760h": 35000, "last_order_at": "2026-11-19T12:00:00+00:00", "avg": 1.5, "x": None}
    kwargs = {"tenant": "glowlab", "person_id": "p1", "change": change, "facts": facts, "now": now, "cause": cause}
    event = tags_changed_event(**kwargs)  # type: ignore[arg-type]
    assert tags_changed_payload(**kwargs) == (event.id, event.to_json())  # type: ignore[arg-type]
