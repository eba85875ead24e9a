"""Person tags (with the rule version and time that put each there) and the `tags.changed` events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters.tables import person_tags
from siyu_segmentation.domain.tagging import Decision, TagDiff
from siyu_shared.events.catalog import TagChange, TagsChanged
from siyu_shared.events.envelope import CloudEvent, deterministic_event_id
from siyu_shared.events.registry import envelope, spec_of
from siyu_shared.events.topics import TopicNames
from siyu_shared.messaging.outbox import add_to_outbox

SOURCE = "/siyu/segmentation"


async def current_tags(session: AsyncSession, *, tenant: str, person_id: str) -> dict[str, Decision]:
    rows = await session.execute(
        select(person_tags.c.tag, person_tags.c.family, person_tags.c.rule_id, person_tags.c.rule_version).where(
            person_tags.c.tenant == tenant, person_tags.c.person_id == person_id
        )
    )
    return {r.tag: Decision(r.tag, r.family, r.rule_id, r.rule_version) for r in rows}


async def person_tag_rows(session: AsyncSession, *, tenant: str, person_id: str) -> list[RowMapping]:
    rows = await session.execute(
        select(person_tags)
        .where(person_tags.c.tenant == tenant, person_tags.c.person_id == person_id)
        .order_by(person_tags.c.tag)
    )
    return list(rows.mappings())


async def apply_tags(
    session: AsyncSession,
    *,
    tenant: str,
    person_id: str,
    change: TagDiff,
    kept_versions: list[Decision],
    facts: dict[str, Any],
    now: datetime,
) -> None:
    """Write the diff; re-stamp tags that stay but are now held by a newer rule version (not a change of set)."""
    if change.removed:
        await session.execute(
            delete(person_tags).where(
                person_tags.c.tenant == tenant,
                person_tags.c.person_id == person_id,
                person_tags.c.tag.in_([d.tag for d in change.removed]),
            )
        )
    if change.added:
        await session.execute(
            pg_insert(person_tags)
            .values(
                [
                    {
                        "tenant": tenant,
                        "person_id": person_id,
                        "tag": d.tag,
                        "family": d.family,
                        "rule_id": d.rule_id,
                        "rule_version": d.rule_version,
                        "tagged_at": now,
                        "facts": facts,
                    }
                    for d in change.added
                ]
            )
            .on_conflict_do_nothing()
        )
    for d in kept_versions:
        await session.execute(
            update(person_tags)
            .where(
                tuple_(person_tags.c.tenant, person_tags.c.person_id, person_tags.c.tag) == (tenant, person_id, d.tag)
            )
            .values(rule_id=d.rule_id, rule_version=d.rule_version)
        )


async def emit_tags_changed(
    session: AsyncSession,
    *,
    tenant: str,
    person_id: str,
    change: TagDiff,
    facts: dict[str, Any],
    now: datetime,
    cause: str,
    topics: TopicNames,
) -> None:
    """Queue `siyu.tags.changed`; its id derives from the cause, so a redone unit of work queues no second copy."""
    event = tags_changed_event(tenant=tenant, person_id=person_id, change=change, facts=facts, now=now, cause=cause)
    await add_to_outbox(session, event, topics=topics)


def tags_changed_event(
    *, tenant: str, person_id: str, change: TagDiff, facts: dict[str, Any], now: datetime, cause: str
) -> CloudEvent:
    """The `siyu.tags.changed` envelope of one person's change (id derived from tenant, person and cause)."""
    data = TagsChanged(
        person_id=person_id,
        added=[_change(d) for d in change.added],
        removed=[_change(d) for d in change.removed],
        tags=list(change.tags),
        facts=facts,
        evaluated_at=now,
        cause=cause if ":" in cause else f"event:{cause}",
    )
    return envelope(
        data,
        tenant=tenant,
        subject=person_id,
        source=SOURCE,
        event_id=deterministic_event_id("tags", tenant, person_id, cause),
        time=now,
    )


def _change(d: Decision) -> TagChange:
    return TagChange(tag=d.tag, family=d.family, rule_id=d.rule_id, rule_version=d.rule_version)


def tags_changed_payload(
    *, tenant: str, person_id: str, change: TagDiff, facts: dict[str, Any], now: datetime, cause: str
) -> tuple[str, bytes]:
    """The event id and JSON of ``tags_changed_event(...).to_json()``, built directly (no model validation: the
    batch path builds hundreds per round; a unit test holds the two byte for byte)."""
    event_id = deterministic_event_id("tags", tenant, person_id, cause)
    evaluated_at, time = _event_times(now)
    data = {
        "person_id": person_id,
        "added": [_change_json(d) for d in change.added],
        "removed": [_change_json(d) for d in change.removed],
        "tags": list(change.tags),
        "facts": facts,
        "evaluated_at": evaluated_at,
        "cause": cause if ":" in cause else f"event:{cause}",
    }
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": SOURCE,
        "type": TagsChanged.event_type,
        "time": time,
        "subject": person_id,
        "tenant": tenant,
        "datacontenttype": "application/json",
        "dataschema": _SCHEMA_URI,
        "data": data,
    }
    return event_id, orjson.dumps(event)


_TIMES: dict[tuple[datetime, timedelta | None], tuple[str, str]] = {}


def _event_times(now: datetime) -> tuple[str, str]:
    """``evaluated_at`` and the envelope's ``time`` for ``now``; a round's events share it, so it is kept (keyed by
    the offset too: equal instants in two zones are written differently)."""
    key = (now, now.utcoffset())
    times = _TIMES.get(key)
    if times is None:
        if len(_TIMES) > 64:
            _TIMES.clear()
        times = _TIMES[key] = (_json_time(now), _json_time(now.astimezone(UTC)))
    return times


def _json_time(value: datetime) -> str:
    """A time as pydantic writes it in JSON (UTC as ``Z``)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_SCHEMA_URI = spec_of(TagsChanged.event_type).schema_uri


def _change_json(d: Decision) -> dict[str, Any]:
    return {"tag": d.tag, "family": d.family, "rule_id": d.rule_id, "rule_version": d.rule_version}
