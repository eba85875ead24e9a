"""Set-based statements of the batch and merge handlers: many persons' facts and tags per statement, never one per
person.

Each function is one round trip whatever the number of persons (an empty input costs none).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
from sqlalchemy import Numeric, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters.tables import order_facts, profiles
from siyu_segmentation.domain.aggregates import ORDER_COLUMNS, TOUCH_COLUMNS
from siyu_segmentation.domain.facts import FACTS, OrderFact, Profile, TouchFact
from siyu_segmentation.domain.fold import FOLDED_COLUMNS
from siyu_segmentation.domain.tagging import Decision
from siyu_shared.kafka.errors import Contention

PROFILE_COLUMNS: tuple[str, ...] = (*FOLDED_COLUMNS, *ORDER_COLUMNS, *TOUCH_COLUMNS)
"""The profile columns events write (RFM scores are the sweep's)."""
_READ_COLUMNS: tuple[str, ...] = (*PROFILE_COLUMNS, "rfm_r", "rfm_f", "rfm_m")
_LOCK_PROFILES = text(
    f"""
    SELECT person_id, {", ".join(_READ_COLUMNS)} FROM profiles
    WHERE tenant = CAST(:tenant AS varchar) AND person_id = ANY(CAST(:persons AS text[]))
    ORDER BY person_id
    FOR UPDATE
    """
).columns(attributes=JSONB)


def new_row() -> dict[str, Any]:
    """A profile that has seen nothing yet (the table's defaults)."""
    row: dict[str, Any] = dict.fromkeys(_READ_COLUMNS)
    for name in _READ_COLUMNS:
        if FACTS.get(name) == "set":
            row[name] = []
    row |= {"lead_count": 0, "incentive": False, "has_phone": False, "wecom_status": "none", "attributes": {}}
    row |= {"order_count": 0, "paid_fen": 0, "refunded_fen": 0, "net_fen": 0, "touches_received": 0}
    return row


@dataclass(slots=True)
class LockedProfile:
    row: dict[str, Any]  # the profile's columns (``_READ_COLUMNS``), as column → value, changed in place
    exists: bool  # the row is in the table (else ``write_profiles`` inserts it)
    created: bool  # no event has been folded into it yet and it did not exist before this batch
    dirty: bool = False  # the row differs from the table's


async def lock_profiles(session: AsyncSession, *, tenant: str, person_ids: Sequence[str]) -> dict[str, LockedProfile]:
    """Lock the persons' profiles (in person order, so concurrent batches cannot deadlock) and read them once;
    a person without one gets a new row in memory, inserted by ``write_profiles`` at the end of the batch. A row is
    written once per batch however many events it takes."""
    wanted = sorted(set(person_ids))
    rows = await session.execute(_LOCK_PROFILES, {"tenant": tenant, "persons": wanted})
    out: dict[str, LockedProfile] = {}
    for r in rows:
        out[r[0]] = LockedProfile(dict(zip(_READ_COLUMNS, r[1:], strict=True)), exists=True, created=False)
    for p in wanted:
        if p not in out:
            out[p] = LockedProfile(new_row(), exists=False, created=True)
    return out


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
    "order_count": "int",
    "paid_fen": "bigint",
    "refunded_fen": "bigint",
    "net_fen": "bigint",
    "first_order_at": "timestamptz",
    "last_order_at": "timestamptz",
    "avg_order_fen": "numeric",
    "mean_interval_days": "numeric",
    "categories": "text[]",
    "touches_received": "int",
    "last_touch_at": "timestamptz",
}
assert set(_ROW_TYPES) == set(PROFILE_COLUMNS)


def _json(rows: Any) -> str:
    """Rows as one JSON parameter (times in RFC 3339), read back with jsonb_to_recordset: one constant statement,
    prepared once, whatever the number of rows."""
    return orjson.dumps(rows, default=_decimal).decode()


def _decimal(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


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


# Refunds reach their orders one probe per order id (the primary key, LATERAL ... OFFSET 0 so it is not flattened
# into a join): planned as a join on a table without statistics for the tenant, both the EXISTS and the UPDATE
# hashed every order of the tenant for each batch. The UPDATE names its orders through an array of order ids,
# an index condition of the primary key with the tenant.
_APPLY_REFUNDS = text(
    """
    WITH v AS (
      SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS v(order_id text, refund_id text, amount_fen bigint, "full" bool)
    ), fresh AS (
      INSERT INTO order_refunds (tenant, refund_id, order_id)
      SELECT CAST(:tenant AS varchar), v.refund_id, v.order_id
      FROM v CROSS JOIN LATERAL (
        SELECT FROM order_facts o WHERE o.tenant = CAST(:tenant AS varchar) AND o.order_id = v.order_id OFFSET 0
      ) AS known
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
    WHERE o.tenant = CAST(:tenant AS varchar) AND o.order_id = ANY(ARRAY(SELECT order_id FROM per_order))
      AND o.order_id = a.order_id
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


# The tenant reaches per-person lookups as a column of a materialized CTE, never as a constant. For a tenant the
# statistics do not know yet (new, or grown since the last ANALYZE) a constant is estimated at one row, and the
# planner then read a person's rows through an index on the tenant alone (the primary key of order_facts), or
# joined a batch against the tenant's profiles in a nested loop, filtering every row of the tenant per person. As a
# column its estimate is any tenant's, and the lookups take the (tenant, person) indexes (auto_explain on the bench).
_TENANT = "WITH k AS MATERIALIZED (SELECT CAST(:tenant AS varchar) AS tenant) "


@functools.cache
def _load_round(orders: bool, touches: bool, tags: bool) -> Any:
    """The statement of ``load_round`` (one text per combination, prepared once)."""
    columns = ["x.person_id"]
    if orders:
        columns.append(
            "ARRAY(SELECT ROW(f.order_id, f.paid_at, f.amount_fen, f.refunded_fen, f.voided, f.categories)"
            " FROM order_facts f WHERE f.tenant = k.tenant AND f.person_id = x.person_id)"
        )
    if touches:
        columns.append(
            "ARRAY(SELECT ROW(f.touch_id, f.occurred_at, f.channel, f.status)"
            " FROM touch_facts f WHERE f.tenant = k.tenant AND f.person_id = x.person_id)"
        )
    if tags:
        columns.append(
            "ARRAY(SELECT ROW(t.tag, t.family, t.rule_id, t.rule_version)"
            " FROM person_tags t WHERE t.tenant = k.tenant AND t.person_id = x.person_id)"
        )
    return text(f"{_TENANT}SELECT {', '.join(columns)} FROM k, unnest(CAST(:persons AS text[])) AS x(person_id)")


@dataclass(slots=True)
class Loaded:
    """A person's fact rows and the tags they hold, as ``load_round`` reads them."""

    orders: tuple[OrderFact, ...]
    touches: tuple[TouchFact, ...]
    held: dict[str, Decision] | None  # None when not asked for


async def load_round(
    session: AsyncSession, *, tenant: str, person_ids: Sequence[str], orders: bool, touches: bool, tags: bool
) -> dict[str, Loaded]:
    """One statement for a round's persons: their orders, touches and held tags (each when asked for)."""
    if not person_ids:
        return {}
    statement = _load_round(orders, touches, tags)
    result = await session.execute(statement, {"tenant": tenant, "persons": sorted(person_ids)})
    out: dict[str, Loaded] = {}
    for row in result:
        i = 1
        order_facts_: tuple[OrderFact, ...] = ()
        if orders:
            order_facts_ = tuple(OrderFact(o[0], o[1], o[2], o[3], o[4], tuple(o[5] or ())) for o in row[i] or ())
            i += 1
        touch_facts_: tuple[TouchFact, ...] = ()
        if touches:
            touch_facts_ = tuple(TouchFact(t[0], t[1], t[2], t[3]) for t in row[i] or ())
            i += 1
        held = {t[0]: Decision(t[0], t[1], t[2], t[3]) for t in row[i] or ()} if tags else None
        out[row[0]] = Loaded(order_facts_, touch_facts_, held)
    return out


_NUMERIC_FACTS = frozenset(c.name for c in profiles.c if isinstance(c.type, Numeric))


def profile_of(person_id: str, row: Mapping[str, Any], loaded: Loaded, facts: Collection[str]) -> Profile:
    """The person as the rules see them: the ``facts`` they read (sets as sets, decimals as exact fractions),
    form answers, orders and touches."""
    values: dict[str, Any] = {}
    for name in facts:
        value = row[name]
        if FACTS[name] == "set":
            value = set(value or ())
        elif value is not None and name in _NUMERIC_FACTS:
            value = Fraction(value)
        values[name] = value
    return Profile(person_id, values, dict(row.get("attributes") or {}), loaded.orders, loaded.touches)


class ProfileCreatedConcurrently(Contention):
    """A profile this batch creates was created by another transaction in the meantime (a merged person's event
    handled on another partition): the batch is retried, as after a serialization failure."""


_WRITE_PROFILES = text(
    f"""
    WITH v AS MATERIALIZED (
      SELECT CAST(:tenant AS varchar) AS tenant, * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS v(person_id text, {", ".join(f"{c} {_ROW_TYPES[c]}" for c in PROFILE_COLUMNS)})
    ), updated AS (
      UPDATE profiles p SET {", ".join(f"{c} = v.{c}" for c in PROFILE_COLUMNS)}, updated_at = now()
      FROM v  -- the tenant as v's column, not a constant: see _TENANT
      WHERE p.tenant = v.tenant AND p.person_id = v.person_id AND v.person_id = ANY(CAST(:existing AS text[]))
      RETURNING 1
    ), inserted AS (
      INSERT INTO profiles (tenant, person_id, {", ".join(PROFILE_COLUMNS)})
      SELECT CAST(:tenant AS varchar), v.person_id, {", ".join(f"v.{c}" for c in PROFILE_COLUMNS)} FROM v
      WHERE v.person_id = ANY(CAST(:new AS text[]))
      ORDER BY v.person_id
      ON CONFLICT (tenant, person_id) DO NOTHING
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted)
    """
)


async def write_profiles(session: AsyncSession, *, tenant: str, people: Mapping[str, LockedProfile]) -> None:
    """One statement: insert the new profiles and update the changed ones (each row written once per batch)."""
    new = sorted(p for p, lp in people.items() if not lp.exists)
    existing = sorted(p for p, lp in people.items() if lp.exists and lp.dirty)
    if not (new or existing):
        return
    rows = [{"person_id": p, **{c: people[p].row[c] for c in PROFILE_COLUMNS}} for p in (*new, *existing)]
    inserted = await session.scalar(
        _WRITE_PROFILES, {"tenant": tenant, "rows": _json(rows), "existing": existing, "new": new}
    )
    if inserted != len(new):
        raise ProfileCreatedConcurrently(f"{len(new) - int(inserted or 0)} profiles of {tenant} appeared meanwhile")
    for p in new:
        people[p].exists = True
    for lp in people.values():
        lp.dirty = False


_WRITE_CHANGES = text(
    """
    WITH gone AS (
      DELETE FROM person_tags pt
      USING unnest(CAST(:del_persons AS text[]), CAST(:del_tags AS text[])) AS d(person_id, tag)
      WHERE pt.tenant = CAST(:tenant AS varchar) AND pt.person_id = ANY(CAST(:del_persons AS text[]))
        AND pt.person_id = d.person_id AND pt.tag = d.tag
    ), gained AS (
      INSERT INTO person_tags (tenant, person_id, tag, family, rule_id, rule_version, tagged_at, facts)
      SELECT CAST(:tenant AS varchar), v.person_id, v.tag, v.family, v.rule_id, v.rule_version, v.tagged_at, v.facts
      FROM jsonb_to_recordset(CAST(:added AS jsonb))
        AS v(person_id text, tag text, family text, rule_id text, rule_version int, tagged_at timestamptz, facts jsonb)
      ON CONFLICT (tenant, person_id, tag) DO UPDATE SET family = excluded.family, rule_id = excluded.rule_id,
        rule_version = excluded.rule_version, tagged_at = excluded.tagged_at, facts = excluded.facts
    ), restamped AS (
      UPDATE person_tags pt SET rule_id = v.rule_id, rule_version = v.rule_version
      FROM unnest(CAST(:rs_persons AS text[]), CAST(:rs_tags AS text[]), CAST(:rs_rule_ids AS text[]),
                  CAST(:rs_versions AS int[])) AS v(person_id, tag, rule_id, rule_version)
      WHERE pt.tenant = CAST(:tenant AS varchar) AND pt.person_id = ANY(CAST(:rs_persons AS text[]))
        AND pt.person_id = v.person_id AND pt.tag = v.tag
    ), queued AS (
      INSERT INTO outbox (event_id, topic, key, event_type, tenant, payload, headers)
      SELECT v.event_id, CAST(:topic AS varchar), v.key, CAST(:event_type AS varchar), CAST(:tenant AS varchar),
             v.payload, CAST(:headers AS jsonb)
      FROM unnest(CAST(:ids AS text[]), CAST(:keys AS text[]), CAST(:payloads AS bytea[])) AS v(event_id, key, payload)
      ON CONFLICT (event_id) DO NOTHING
    )
    SELECT 1
    """
)


async def write_changes(
    session: AsyncSession,
    *,
    tenant: str,
    removed: Sequence[tuple[str, Decision]],
    added: Sequence[tuple[str, Decision, datetime, dict[str, Any]]],
    restamped: Sequence[tuple[str, Decision]],
    event_type: str,
    topic: str,
    events: Sequence[tuple[str, str, bytes]],
) -> None:
    """Tag writes and `tags.changed` outbox rows in one statement (data-modifying CTEs on disjoint rows): many
    persons' removals, gains (each with the time and the facts that decided; a tag already there, lost and gained
    again in the batch, is overwritten), re-stamps, and the events in order."""
    if not (removed or added or restamped or events):
        return
    added_rows = [
        {
            "person_id": p,
            "tag": d.tag,
            "family": d.family,
            "rule_id": d.rule_id,
            "rule_version": d.rule_version,
            "tagged_at": at,
            "facts": facts,
        }
        for p, d, at, facts in added
    ]
    await session.execute(
        _WRITE_CHANGES,
        {
            "tenant": tenant,
            "del_persons": [p for p, _ in removed],
            "del_tags": [d.tag for _, d in removed],
            "added": _json(added_rows),
            "rs_persons": [p for p, _ in restamped],
            "rs_tags": [d.tag for _, d in restamped],
            "rs_rule_ids": [d.rule_id for _, d in restamped],
            "rs_versions": [d.rule_version for _, d in restamped],
            "topic": topic,
            "event_type": event_type,
            "headers": orjson.dumps({"ce_type": event_type, "ce_tenant": tenant}).decode(),
            "ids": [event_id for event_id, _, _ in events],
            "keys": [key for _, key, _ in events],
            "payloads": [payload for _, _, payload in events],
        },
    )
