"""Set-based statements of the batch handler: many persons' facts and tags per statement, never one per person.

Each function is one round trip whatever the number of persons (an empty input costs none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Text, cast, func, literal_column, select, text, type_coerce, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

from siyu_segmentation.adapters.profiles import _plain
from siyu_segmentation.adapters.tables import order_facts, person_tags, profiles, touch_facts
from siyu_segmentation.domain.facts import FACTS, OrderFact, Profile, TouchFact
from siyu_segmentation.domain.fold import FOLDED_COLUMNS
from siyu_segmentation.domain.tagging import Decision

_LOCK_PROFILES = text(
    f"""
    INSERT INTO profiles (tenant, person_id)
    SELECT CAST(:tenant AS varchar), x.person_id FROM unnest(CAST(:persons AS text[])) AS x(person_id)
    ORDER BY x.person_id
    ON CONFLICT (tenant, person_id) DO UPDATE SET updated_at = now()
    RETURNING person_id, {", ".join(FOLDED_COLUMNS)}, (xmax = 0) AS _created
    """
).columns(attributes=JSONB)


@dataclass(slots=True)
class LockedProfile:
    row: dict[str, Any]  # the folded columns, as column → value
    created: bool  # the profile did not exist before this batch


async def lock_profiles(session: AsyncSession, *, tenant: str, person_ids: Sequence[str]) -> dict[str, LockedProfile]:
    """Create the missing profiles and lock them all (in person order, so concurrent batches cannot deadlock);
    returns each one's folded columns and whether it was just created."""
    if not person_ids:
        return {}
    rows = await session.execute(_LOCK_PROFILES, {"tenant": tenant, "persons": sorted(set(person_ids))})
    return {
        r["person_id"]: LockedProfile({c: r[c] for c in FOLDED_COLUMNS}, bool(r["_created"])) for r in rows.mappings()
    }


_ROW_TYPES = {
    "first_seen_at": "timestamptz",
    "last_seen_at": "timestamptz",
    "first_channel": "text",
    "channels": "text[]",
    "account_kinds": "text[]",
    "partner_ids": "text[]",
    "campaign_ids": "text[]",
    "lead_kinds": "text[]",
    "lead_count": "int",
    "incentive": "bool",
    "has_phone": "bool",
    "wecom_status": "text",
    "wecom_added_at": "timestamptz",
    "wecom_staff": "text[]",
    "groups": "text[]",
    "attributes": "jsonb",
}
assert set(_ROW_TYPES) == set(FOLDED_COLUMNS)


_WRITE_FOLDED = text(
    f"""
    UPDATE profiles p SET {", ".join(f"{c} = v.{c}" for c in FOLDED_COLUMNS)}, updated_at = now()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
      AS v(person_id text, {", ".join(f"{c} {t}" for c, t in _ROW_TYPES.items())})
    WHERE p.tenant = CAST(:tenant AS varchar) AND p.person_id = v.person_id
    """
)


def _json(rows: Any) -> str:
    """Rows as one JSON parameter (times in RFC 3339), read back with jsonb_to_recordset: one constant statement,
    prepared once, whatever the number of rows."""
    return orjson.dumps(rows).decode()


async def write_folded(session: AsyncSession, *, tenant: str, rows: Mapping[str, Mapping[str, Any]]) -> None:
    """Write back the folded columns of ``rows`` (person → row), one statement. Sets are written as folded
    (sorted in code point order, as the C collation sorts: their order carries no meaning)."""
    if not rows:
        return
    payload = [{"person_id": p, **{c: r.get(c) for c in FOLDED_COLUMNS}} for p, r in rows.items()]
    await session.execute(_WRITE_FOLDED, {"tenant": tenant, "rows": _json(payload)})


_INSERT_ORDERS = text(
    """
    INSERT INTO order_facts (tenant, order_id, person_id, paid_at, amount_fen, categories)
    SELECT CAST(:tenant AS varchar), v.order_id, v.person_id, v.paid_at, v.amount_fen, v.categories
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
      AS v(order_id text, person_id text, paid_at timestamptz, amount_fen bigint, categories text[])
    ON CONFLICT (tenant, order_id) DO NOTHING
    """
)


async def insert_orders(session: AsyncSession, *, tenant: str, orders: Sequence[Mapping[str, Any]]) -> None:
    """Paid orders (``order_id, person_id, paid_at, amount_fen, categories``); a known order id is kept as is."""
    if orders:
        await session.execute(_INSERT_ORDERS, {"tenant": tenant, "rows": _json(orders)})


_APPLY_REFUNDS = text(
    """
    WITH v AS (
      SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS v(order_id text, refund_id text, amount_fen bigint, "full" bool)
    ), fresh AS (
      INSERT INTO order_refunds (tenant, refund_id, order_id)
      SELECT CAST(:tenant AS varchar), v.refund_id, v.order_id FROM v
      WHERE EXISTS (SELECT 1 FROM order_facts o WHERE o.tenant = CAST(:tenant AS varchar) AND o.order_id = v.order_id)
      ON CONFLICT DO NOTHING
      RETURNING refund_id
    ), per_order AS (
      SELECT v.order_id, sum(v.amount_fen) AS amount, bool_or(v."full") AS is_full
      FROM v JOIN fresh f ON f.refund_id = v.refund_id GROUP BY v.order_id
    )
    UPDATE order_facts o
    SET refunded_fen = least(o.amount_fen, o.refunded_fen + a.amount),
        voided = o.voided OR a.is_full OR least(o.amount_fen, o.refunded_fen + a.amount) >= o.amount_fen
    FROM per_order a
    WHERE o.tenant = CAST(:tenant AS varchar) AND o.order_id = a.order_id
    """
)


async def apply_refunds(session: AsyncSession, *, tenant: str, refunds: Sequence[Mapping[str, Any]]) -> None:
    """Refunds (``order_id, refund_id, amount_fen, full``), each applied once per refund id, to known orders."""
    if refunds:
        await session.execute(_APPLY_REFUNDS, {"tenant": tenant, "rows": _json(list(refunds))})


async def void_orders(session: AsyncSession, *, tenant: str, order_ids: Sequence[str]) -> None:
    if order_ids:
        await session.execute(
            update(order_facts)
            .where(order_facts.c.tenant == tenant, order_facts.c.order_id.in_(sorted(set(order_ids))))
            .values(voided=True)
        )


_UPSERT_TOUCHES = text(
    """
    INSERT INTO touch_facts (tenant, touch_id, person_id, occurred_at, channel, status)
    SELECT CAST(:tenant AS varchar), v.touch_id, v.person_id, v.occurred_at, v.channel, v.status
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
      AS v(touch_id text, person_id text, occurred_at timestamptz, channel text, status text)
    ON CONFLICT (tenant, touch_id) DO UPDATE SET status = excluded.status, occurred_at = excluded.occurred_at
    """
)


async def upsert_touches(session: AsyncSession, *, tenant: str, touches: Sequence[Mapping[str, Any]]) -> None:
    """Touches (``touch_id, person_id, occurred_at, channel, status``); the latest status of a touch id wins."""
    if touches:
        latest = {t["touch_id"]: t for t in touches}  # one row per touch id (later ones win)
        await session.execute(_UPSERT_TOUCHES, {"tenant": tenant, "rows": _json(list(latest.values()))})


_RECOMPUTE_ORDERS = text(
    """
    UPDATE profiles p SET
      order_count = s.cnt, paid_fen = s.paid, refunded_fen = s.refunded, net_fen = s.paid - s.refunded,
      first_order_at = s.first_at, last_order_at = s.last_at, avg_order_fen = s.avg_fen,
      mean_interval_days = CASE WHEN s.cnt > 1
        THEN CAST(extract(epoch FROM s.last_at - s.first_at) AS numeric) / 86400 / (s.cnt - 1) END,
      categories = s.cats, updated_at = now()
    FROM (
      SELECT x.person_id, a.*
      FROM unnest(CAST(:persons AS text[])) AS x(person_id)
      CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE NOT o.voided) AS cnt,
               coalesce(sum(o.amount_fen), 0) AS paid, coalesce(sum(o.refunded_fen), 0) AS refunded,
               min(o.paid_at) FILTER (WHERE NOT o.voided) AS first_at,
               max(o.paid_at) FILTER (WHERE NOT o.voided) AS last_at,
               avg(o.amount_fen) FILTER (WHERE NOT o.voided) AS avg_fen,
               ARRAY(SELECT DISTINCT c FROM order_facts o2, unnest(o2.categories) c
                     WHERE o2.tenant = CAST(:tenant AS varchar) AND o2.person_id = x.person_id AND NOT o2.voided
                     ORDER BY 1) AS cats
        FROM order_facts o WHERE o.tenant = CAST(:tenant AS varchar) AND o.person_id = x.person_id
      ) a
    ) s
    WHERE p.tenant = CAST(:tenant AS varchar) AND p.person_id = s.person_id
    """
)

_RECOMPUTE_TOUCHES = text(
    """
    UPDATE profiles p SET touches_received = s.cnt, last_touch_at = s.last_at, updated_at = now()
    FROM (
      SELECT x.person_id, a.*
      FROM unnest(CAST(:persons AS text[])) AS x(person_id)
      CROSS JOIN LATERAL (
        SELECT count(*) AS cnt, max(t.occurred_at) AS last_at FROM touch_facts t
        WHERE t.tenant = CAST(:tenant AS varchar) AND t.person_id = x.person_id AND t.status = 'sent'
      ) a
    ) s
    WHERE p.tenant = CAST(:tenant AS varchar) AND p.person_id = s.person_id
    """
)


async def recompute_orders(session: AsyncSession, *, tenant: str, person_ids: Sequence[str]) -> None:
    """Re-derive the order aggregates of these persons from their order facts, one statement."""
    if person_ids:
        await session.execute(_RECOMPUTE_ORDERS, {"tenant": tenant, "persons": sorted(set(person_ids))})


async def recompute_touches(session: AsyncSession, *, tenant: str, person_ids: Sequence[str]) -> None:
    if person_ids:
        await session.execute(_RECOMPUTE_TOUCHES, {"tenant": tenant, "persons": sorted(set(person_ids))})


def _json_rows(table: Any, columns: Sequence[str]) -> Any:
    """The current profile's rows of ``table`` as one JSON array of arrays (correlated to the profile row)."""
    row = func.jsonb_build_array(*(table.c[c] for c in columns))
    return (
        select(func.coalesce(func.jsonb_agg(row), text("'[]'::jsonb")))
        .where(table.c.tenant == profiles.c.tenant, table.c.person_id == profiles.c.person_id)
        .scalar_subquery()
    )


@dataclass(slots=True)
class Person:
    """A person as loaded for re-tagging: current tags, the tags the rules give (decided in SQL), and the raw row
    (turned into a ``Profile`` only for persons whose tags change, to say which facts decided)."""

    person_id: str
    held: dict[str, Decision]
    desired_tags: list[str]
    row: RowMapping

    def profile(self) -> Profile:
        row = self.row
        orders = tuple(
            OrderFact(o[0], datetime.fromisoformat(o[1]), int(o[2]), int(o[3]), bool(o[4]), tuple(o[5] or ()))
            for o in row["_orders"]
        )
        touches = tuple(TouchFact(t[0], datetime.fromisoformat(t[1]), t[2], t[3]) for t in row["_touches"])
        values = {name: _plain(row[name]) for name in FACTS}
        return Profile(self.person_id, values, dict(row["attributes"] or {}), orders, touches)


async def load_people(
    session: AsyncSession,
    *,
    tenant: str,
    person_ids: Sequence[str],
    desired: Any = None,
    with_orders: bool = True,
    with_touches: bool = True,
) -> dict[str, Person]:
    """Facts (orders and touches only when a rule needs them), current tags and ``desired`` (a text[] expression
    over the ``profiles`` row: the tags the rules give) of many persons, one query. Persons without a profile are
    absent."""
    if not person_ids:
        return {}
    empty: Any = literal_column("'[]'::jsonb")
    order_cols = ("order_id", "paid_at", "amount_fen", "refunded_fen", "voided", "categories")
    touch_cols = ("touch_id", "occurred_at", "channel", "status")
    tag_cols = ("tag", "family", "rule_id", "rule_version")
    # Arrays as asyncpg decodes them (lists of str): no per-item result processing.
    columns = [type_coerce(c, NullType()).label(c.name) if isinstance(c.type, ARRAY) else c for c in profiles.c]
    query = select(
        *columns,
        (_json_rows(order_facts, order_cols) if with_orders else empty).label("_orders"),
        (_json_rows(touch_facts, touch_cols) if with_touches else empty).label("_touches"),
        _json_rows(person_tags, tag_cols).label("_tags"),
        type_coerce(desired if desired is not None else literal_column("'{}'::text[]"), NullType()).label("_desired"),
    ).where(profiles.c.tenant == tenant, profiles.c.person_id == func.any(cast(sorted(set(person_ids)), ARRAY(Text))))
    out: dict[str, Person] = {}
    for row in (await session.execute(query)).mappings():
        person_id = row["person_id"]
        held = {t[0]: Decision(t[0], t[1], t[2], int(t[3])) for t in row["_tags"]}
        out[person_id] = Person(person_id, held, [t for t in row["_desired"] or () if t is not None], row)
    return out


_DELETE_TAGS = text(
    """
    DELETE FROM person_tags pt
    USING unnest(CAST(:persons AS text[]), CAST(:tags AS text[])) AS d(person_id, tag)
    WHERE pt.tenant = CAST(:tenant AS varchar) AND pt.person_id = d.person_id AND pt.tag = d.tag
    """
)

_INSERT_TAGS = text(
    """
    INSERT INTO person_tags (tenant, person_id, tag, family, rule_id, rule_version, tagged_at, facts)
    SELECT CAST(:tenant AS varchar), v.person_id, v.tag, v.family, v.rule_id, v.rule_version, :now, v.facts
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
      AS v(person_id text, tag text, family text, rule_id text, rule_version int, facts jsonb)
    ON CONFLICT DO NOTHING
    """
)

_RESTAMP_TAGS = text(
    """
    UPDATE person_tags pt SET rule_id = v.rule_id, rule_version = v.rule_version
    FROM unnest(CAST(:persons AS text[]), CAST(:tags AS text[]), CAST(:rule_ids AS text[]),
                CAST(:versions AS int[])) AS v(person_id, tag, rule_id, rule_version)
    WHERE pt.tenant = CAST(:tenant AS varchar) AND pt.person_id = v.person_id AND pt.tag = v.tag
    """
)


async def write_tags(
    session: AsyncSession,
    *,
    tenant: str,
    removed: Sequence[tuple[str, Decision]],
    added: Sequence[tuple[str, Decision, dict[str, Any]]],
    restamped: Sequence[tuple[str, Decision]],
    now: datetime,
) -> None:
    """Many persons' tag diffs: removals, gains (each with the facts that decided) and re-stamps, ≤ 3 statements."""
    if removed:
        await session.execute(
            _DELETE_TAGS,
            {"tenant": tenant, "persons": [p for p, _ in removed], "tags": [d.tag for _, d in removed]},
        )
    if added:
        rows = [
            {
                "person_id": p,
                "tag": d.tag,
                "family": d.family,
                "rule_id": d.rule_id,
                "rule_version": d.rule_version,
                "facts": facts,
            }
            for p, d, facts in added
        ]
        await session.execute(_INSERT_TAGS, {"tenant": tenant, "rows": _json(rows), "now": now})
    if restamped:
        await session.execute(
            _RESTAMP_TAGS,
            {
                "tenant": tenant,
                "persons": [p for p, _ in restamped],
                "tags": [d.tag for _, d in restamped],
                "rule_ids": [d.rule_id for _, d in restamped],
                "versions": [d.rule_version for _, d in restamped],
            },
        )


_QUEUE_EVENTS = text(
    """
    INSERT INTO outbox (event_id, topic, key, event_type, tenant, payload, headers)
    SELECT v.event_id, CAST(:topic AS varchar), v.key, CAST(:event_type AS varchar), CAST(:tenant AS varchar),
           v.payload, CAST(:headers AS jsonb)
    FROM unnest(CAST(:ids AS text[]), CAST(:keys AS text[]), CAST(:payloads AS bytea[])) AS v(event_id, key, payload)
    ON CONFLICT (event_id) DO NOTHING
    """
)


async def queue_events(
    session: AsyncSession, *, tenant: str, event_type: str, topic: str, events: Sequence[tuple[str, str, bytes]]
) -> None:
    """One tenant's events of one type, as (event id, key, JSON), into the outbox with one constant statement (an
    id already queued is ignored, as with ``add_to_outbox``: a redone unit of work queues no second copy)."""
    if not events:
        return
    await session.execute(
        _QUEUE_EVENTS,
        {
            "topic": topic,
            "event_type": event_type,
            "tenant": tenant,
            "headers": orjson.dumps({"ce_type": event_type, "ce_tenant": tenant}).decode(),
            "ids": [event_id for event_id, _, _ in events],
            "keys": [key for _, key, _ in events],
            "payloads": [payload for _, _, payload in events],
        },
    )
