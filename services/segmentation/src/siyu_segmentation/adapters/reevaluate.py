"""Set-based re-evaluation of a tenant's rules over a range of profiles: backfills, the recency sweep, dry runs.

One chunk = one transaction holding the tenant lock exclusively (live events hold it shared), so a person's live
events wait for the chunk and are then evaluated against the tags it wrote: nothing is lost or reordered. The
diff is computed against the person_tags table in SQL, applied in SQL, and the `tags.changed` outbox rows are
generated in SQL (one per changed person, ids derived from the cause), never person by person in Python.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, false, func, insert, literal, select, text
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters.rule_sql import compile_condition
from siyu_segmentation.adapters.rule_store import lock_tenant_exclusive
from siyu_segmentation.adapters.tables import person_tags, profiles, seg_diff
from siyu_segmentation.domain.facts import ATTRIBUTE_PREFIX
from siyu_segmentation.domain.rules import referenced_facts
from siyu_segmentation.domain.tagging import Scope
from siyu_shared.events.catalog import TagsChanged
from siyu_shared.events.registry import spec_of
from siyu_shared.events.topics import TopicNames


@dataclass(frozen=True, slots=True)
class ChunkResult:
    last_person: str | None
    processed: int
    changed: int


async def reevaluate_chunk(
    session: AsyncSession,
    *,
    tenant: str,
    scopes: Sequence[Scope],
    drop_tags: Sequence[str] = (),
    after: str | None,
    limit: int,
    now: datetime,
    cause: str,
    topics: TopicNames,
) -> ChunkResult:
    """Re-decide the scopes' tags (and drop ``drop_tags``) for the next ``limit`` profiles after ``after``."""
    await lock_tenant_exclusive(session, tenant)
    p = profiles
    window = select(p.c.person_id).where(p.c.tenant == tenant).order_by(p.c.person_id).limit(limit)
    if after is not None:
        window = window.where(p.c.person_id > after)
    chunk = window.subquery()
    bounds = (await session.execute(select(func.count(), func.max(chunk.c.person_id)))).one()
    processed, upto = int(bounds[0]), bounds[1]
    if upto is None:
        return ChunkResult(None, 0, 0)

    def in_range(column: Any) -> Any:
        lower = column > after if after is not None else literal(True)
        return lower & (column <= upto)

    tags = sorted({t for s in scopes for t in s.tags} | set(drop_tags))
    cases = [case(*((compile_condition(r.condition, p, now), r.tag) for r in s.rules), else_=None) for s in scopes]
    if cases:
        unnested = (
            select(p.c.person_id, func.unnest(array(cases)).label("tag"))
            .where(p.c.tenant == tenant, in_range(p.c.person_id))
            .subquery()
        )
        desired = select(unnested.c.person_id, unnested.c.tag).where(unnested.c.tag.is_not(None))
    else:
        desired = select(p.c.person_id, p.c.first_channel.label("tag")).where(false())
    pt = person_tags
    current = select(pt.c.person_id, pt.c.tag).where(
        pt.c.tenant == tenant, in_range(pt.c.person_id), pt.c.tag.in_(tags)
    )
    added = desired.except_(current).subquery()
    removed = current.except_(desired).subquery()
    await session.execute(
        insert(seg_diff).from_select(
            ["tenant", "person_id", "tag", "added"],
            select(literal(tenant), added.c.person_id, added.c.tag, literal(True)),
        )
    )
    await session.execute(
        insert(seg_diff).from_select(
            ["tenant", "person_id", "tag", "added", "family", "rule_id", "rule_version"],
            select(
                literal(tenant),
                removed.c.person_id,
                removed.c.tag,
                literal(False),
                pt.c.family,
                pt.c.rule_id,
                pt.c.rule_version,
            )
            .select_from(removed.join(pt, (pt.c.person_id == removed.c.person_id) & (pt.c.tag == removed.c.tag)))
            .where(pt.c.tenant == tenant),
        )
    )
    meta = [
        {"tag": r.tag, "family": r.family, "rule_id": r.rule_id, "rule_version": r.version}
        for s in scopes
        for r in s.rules
    ]
    params = {"tenant": tenant, "now": now, "meta": json.dumps(meta)}
    await session.execute(_FILL_META, params)
    await session.execute(_DELETE_REMOVED, params)
    facts = sorted({f for s in scopes for r in s.rules for f in referenced_facts(r.condition)})
    await session.execute(_insert_added(facts), params)
    await session.execute(_RESTAMP, {**params, "after": after or "", "upto": upto})
    changed = await session.scalar(
        _outbox_insert(facts),
        {
            **params,
            "now_text": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "cause": cause,
            "topic": topics.name(TagsChanged.topic),
            "schema_uri": spec_of(TagsChanged.event_type).schema_uri,
        },
    )
    await session.execute(text("DELETE FROM seg_diff WHERE tenant = :tenant"), {"tenant": tenant})
    return ChunkResult(str(upto), processed, int(changed or 0))


_FILL_META = text(
    """
    UPDATE seg_diff d SET family = m.family, rule_id = m.rule_id, rule_version = m.rule_version
    FROM jsonb_to_recordset(CAST(:meta AS jsonb)) AS m(tag text, family text, rule_id text, rule_version int)
    WHERE d.tenant = CAST(:tenant AS varchar) AND d.added AND d.tag = m.tag
    """
)
_DELETE_REMOVED = text(
    """
    DELETE FROM person_tags pt USING seg_diff d
    WHERE d.tenant = CAST(:tenant AS varchar) AND NOT d.added
      AND pt.tenant = CAST(:tenant AS varchar) AND pt.person_id = d.person_id AND pt.tag = d.tag
    """
)


def _insert_added(facts: Sequence[str]) -> Any:
    """Write the gained tags, each with the facts that decided (the person tag's reason)."""
    return text(
        f"""
        INSERT INTO person_tags (tenant, person_id, tag, family, rule_id, rule_version, tagged_at, facts)
        SELECT CAST(:tenant AS varchar), d.person_id, d.tag, d.family, d.rule_id, d.rule_version, :now,
               {_facts_sql(facts)}
        FROM seg_diff d JOIN profiles p ON p.tenant = CAST(:tenant AS varchar) AND p.person_id = d.person_id
        WHERE d.tenant = CAST(:tenant AS varchar) AND d.added
        ON CONFLICT DO NOTHING
        """
    )


# Tags that stay but are now decided by a newer rule version: re-stamped, not a change of the tag set.
_RESTAMP = text(
    """
    UPDATE person_tags pt SET rule_id = m.rule_id, rule_version = m.rule_version
    FROM jsonb_to_recordset(CAST(:meta AS jsonb)) AS m(tag text, family text, rule_id text, rule_version int)
    WHERE pt.tenant = CAST(:tenant AS varchar) AND pt.tag = m.tag
      AND pt.person_id > CAST(:after AS varchar) AND pt.person_id <= CAST(:upto AS varchar)
      AND (pt.rule_id, pt.rule_version) IS DISTINCT FROM (m.rule_id, m.rule_version)
    """
)


def _facts_sql(facts: Sequence[str]) -> str:
    parts = []
    for fact in facts[:50]:
        # Names are validated by the rule parser (known facts, attribute names of [A-Za-z0-9_-]).
        if fact.startswith(ATTRIBUTE_PREFIX):
            parts.append(f"'{fact}', p.attributes -> '{fact.removeprefix(ATTRIBUTE_PREFIX)}'")
        else:
            parts.append(f"'{fact}', to_jsonb(p.{fact})")
    return f"jsonb_build_object({', '.join(parts)})" if parts else "'{}'::jsonb"


def _outbox_insert(facts: Sequence[str]) -> Any:
    return text(
        f"""
        WITH per_person AS (
          SELECT d.person_id,
                 coalesce(jsonb_agg(jsonb_build_object('tag', d.tag, 'family', d.family, 'rule_id', d.rule_id,
                          'rule_version', d.rule_version) ORDER BY d.tag) FILTER (WHERE d.added), '[]') AS added,
                 coalesce(jsonb_agg(jsonb_build_object('tag', d.tag, 'family', d.family, 'rule_id', d.rule_id,
                          'rule_version', d.rule_version) ORDER BY d.tag) FILTER (WHERE NOT d.added), '[]') AS removed
          FROM seg_diff d WHERE d.tenant = CAST(:tenant AS varchar) GROUP BY d.person_id
        ), events AS (
          SELECT CAST(CAST(md5('tags/' || CAST(:tenant AS varchar) || '/' || x.person_id || '/'
                                  || CAST(:cause AS text)) AS uuid) AS text) AS id,
                 x.*, {_facts_sql(facts)} AS facts,
                 (SELECT coalesce(jsonb_agg(t.tag ORDER BY t.tag), '[]') FROM person_tags t
                  WHERE t.tenant = CAST(:tenant AS varchar) AND t.person_id = x.person_id) AS tags
          FROM per_person x JOIN profiles p ON p.tenant = CAST(:tenant AS varchar) AND p.person_id = x.person_id
        ), queued AS (
          INSERT INTO outbox (event_id, topic, key, event_type, tenant, payload, headers)
          SELECT e.id, CAST(:topic AS varchar), e.person_id, 'siyu.tags.changed', CAST(:tenant AS varchar),
                 convert_to(CAST(jsonb_build_object(
                   'specversion', '1.0', 'id', e.id, 'source', '/siyu/segmentation', 'type', 'siyu.tags.changed',
                   'time', CAST(:now_text AS text), 'subject', e.person_id, 'tenant', CAST(:tenant AS varchar),
                   'datacontenttype', 'application/json', 'dataschema', CAST(:schema_uri AS text),
                   'data', jsonb_build_object('person_id', e.person_id, 'added', e.added, 'removed', e.removed,
                                              'tags', e.tags, 'facts', e.facts, 'evaluated_at', CAST(:now_text AS text),
                                              'cause', CAST(:cause AS text))
                 ) AS text), 'UTF8'),
                 jsonb_build_object('ce_type', 'siyu.tags.changed', 'ce_tenant', CAST(:tenant AS varchar))
          FROM events e
          ON CONFLICT (event_id) DO NOTHING
          RETURNING 1
        )
        SELECT count(*) FROM queued
        """
    )
