"""Set-based statements of the batch handler: many persons' facts and tags per statement, never one per person.

Each function is one round trip whatever the number of persons (an empty input costs none).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

import orjson
from sqlalchemy import Numeric, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters.tables import order_facts, profiles
from siyu_segmentation.domain.facts import FACTS, OrderFact, Profile, TouchFact
from siyu_segmentation.domain.fold import FOLDED_COLUMNS
from siyu_segmentation.domain.tagging import Decision

_COLUMNS = ", ".join(FOLDED_COLUMNS)
_LOCK_PROFILES = text(
    f"""
    WITH created AS (
      INSERT INTO profiles (tenant, person_id)
      SELECT CAST(:tenant AS varchar), x.person_id FROM unnest(CAST(:persons AS text[])) AS x(person_id)
      ORDER BY x.person_id
      ON CONFLICT (tenant, person_id) DO NOTHING
      RETURNING person_id, {_COLUMNS}, true AS _created
    ), existing AS (
      SELECT person_id, {_COLUMNS}, false AS _created FROM profiles
      WHERE tenant = CAST(:tenant AS varchar) AND person_id = ANY(CAST(:persons AS text[]))
      ORDER BY person_id
      FOR UPDATE
    )
    SELECT * FROM created UNION ALL SELECT * FROM existing
    """
).columns(attributes=JSONB)


@dataclass(slots=True)
class LockedProfile:
    row: dict[str, Any]  # the folded columns, as column → value
    created: bool  # the profile did not exist before this batch


async def lock_profiles(session: AsyncSession, *, tenant: str, person_ids: Sequence[str]) -> dict[str, LockedProfile]:
    """Create the missing profiles and lock them all (in person order, so concurrent batches cannot deadlock);
    returns each one's folded columns and whether it was just created.

    One statement: the missing rows are inserted, the others locked ``FOR UPDATE`` (not rewritten: the round's
    write-back is then the only new version of a profile that existed). A row another transaction inserted or
    deleted after the statement's snapshot is in neither half; it is asked for again."""
    wanted = sorted(set(person_ids))
    out: dict[str, LockedProfile] = {}
    for _ in range(5):
        if not wanted:
            return out
        rows = await session.execute(_LOCK_PROFILES, {"tenant": tenant, "persons": wanted})
        # Rows as tuples: person_id, the folded columns in order, _created.
        for r in rows:
            out[r[0]] = LockedProfile(dict(zip(FOLDED_COLUMNS, r[1:-1], strict=True)), bool(r[-1]))
        wanted = [p for p in wanted if p not in out]
    raise RuntimeError(f"profiles of {tenant} kept changing under the lock: {wanted[:5]}")


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


def _json(rows: Any) -> str:
    """Rows as one JSON parameter (times in RFC 3339), read back with jsonb_to_recordset: one constant statement,
    prepared once, whatever the number of rows."""
    return orjson.dumps(rows).decode()


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


_ORDER_AGGREGATES = """
      order_count = CASE WHEN v.orders THEN s.cnt ELSE p.order_count END,
      paid_fen = CASE WHEN v.orders THEN s.paid ELSE p.paid_fen END,
      refunded_fen = CASE WHEN v.orders THEN s.refunded ELSE p.refunded_fen END,
      net_fen = CASE WHEN v.orders THEN s.paid - s.refunded ELSE p.net_fen END,
      first_order_at = CASE WHEN v.orders THEN s.first_at ELSE p.first_order_at END,
      last_order_at = CASE WHEN v.orders THEN s.last_at ELSE p.last_order_at END,
      avg_order_fen = CASE WHEN v.orders THEN s.avg_fen ELSE p.avg_order_fen END,
      mean_interval_days = CASE WHEN NOT v.orders THEN p.mean_interval_days WHEN s.cnt > 1
        THEN CAST(extract(epoch FROM s.last_at - s.first_at) AS numeric) / 86400 / (s.cnt - 1) END,
      categories = CASE WHEN v.orders THEN s.cats ELSE p.categories END,"""

_ORDER_LATERAL = """
    LEFT JOIN LATERAL (
      SELECT count(*) FILTER (WHERE NOT o.voided) AS cnt,
             coalesce(sum(o.amount_fen), 0) AS paid, coalesce(sum(o.refunded_fen), 0) AS refunded,
             min(o.paid_at) FILTER (WHERE NOT o.voided) AS first_at,
             max(o.paid_at) FILTER (WHERE NOT o.voided) AS last_at,
             avg(o.amount_fen) FILTER (WHERE NOT o.voided) AS avg_fen,
             CASE WHEN v.orders THEN ARRAY(
               SELECT DISTINCT c FROM order_facts o2, unnest(o2.categories) c
               WHERE o2.tenant = CAST(:tenant AS varchar) AND o2.person_id = v.person_id AND NOT o2.voided
               ORDER BY 1) END AS cats
      FROM order_facts o WHERE v.orders AND o.tenant = CAST(:tenant AS varchar) AND o.person_id = v.person_id
    ) s ON true"""

_TOUCH_LATERAL = """
    LEFT JOIN LATERAL (
      SELECT count(*) AS cnt, max(t.occurred_at) AS last_at FROM touch_facts t
      WHERE v.touches AND t.tenant = CAST(:tenant AS varchar) AND t.person_id = v.person_id AND t.status = 'sent'
    ) ts ON true"""


@functools.cache
def _write_and_load(facts: tuple[str, ...], attributes: bool, with_orders: bool, with_touches: bool) -> Any:
    """The statement of ``write_and_load`` for what the rules read (one text per rule set, prepared once)."""
    returning = ["p.person_id", *(f"p.{f}" for f in facts)]
    if attributes:
        returning.append("p.attributes")
    if with_orders:
        returning.append(
            "ARRAY(SELECT ROW(f.order_id, f.paid_at, f.amount_fen, f.refunded_fen, f.voided, f.categories)"
            " FROM order_facts f WHERE f.tenant = p.tenant AND f.person_id = p.person_id) AS _orders"
        )
    if with_touches:
        returning.append(
            "ARRAY(SELECT ROW(f.touch_id, f.occurred_at, f.channel, f.status)"
            " FROM touch_facts f WHERE f.tenant = p.tenant AND f.person_id = p.person_id) AS _touches"
        )
    returning.append(
        "ARRAY(SELECT ROW(t.tag, t.family, t.rule_id, t.rule_version)"
        " FROM person_tags t WHERE t.tenant = p.tenant AND t.person_id = p.person_id) AS _tags"
    )
    folded = ", ".join(f"{c} = CASE WHEN v.folded THEN v.{c} ELSE p.{c} END" for c in FOLDED_COLUMNS)
    statement = text(
        f"""
        UPDATE profiles p SET {folded}, {_ORDER_AGGREGATES}
          touches_received = CASE WHEN v.touches THEN ts.cnt ELSE p.touches_received END,
          last_touch_at = CASE WHEN v.touches THEN ts.last_at ELSE p.last_touch_at END,
          updated_at = now()
        FROM jsonb_to_recordset(CAST(:rows AS jsonb))
          AS v(person_id text, folded bool, orders bool, touches bool,
               {", ".join(f"{c} {t}" for c, t in _ROW_TYPES.items())})
        {_ORDER_LATERAL}
        {_TOUCH_LATERAL}
        WHERE p.tenant = CAST(:tenant AS varchar) AND p.person_id = ANY(CAST(:persons AS text[]))
          AND p.person_id = v.person_id
        RETURNING {", ".join(returning)}
        """
    )
    return statement.columns(attributes=JSONB) if attributes else statement


@dataclass(slots=True)
class Loaded:
    """A person as written and read back by ``write_and_load``: the profile the rules see and the tags held."""

    profile: Profile
    held: dict[str, Decision]


_NUMERIC_FACTS = frozenset(c.name for c in profiles.c if isinstance(c.type, Numeric))


async def write_and_load(
    session: AsyncSession,
    *,
    tenant: str,
    person_ids: Sequence[str],
    folded: Mapping[str, Mapping[str, Any]],
    order_persons: Collection[str],
    touch_persons: Collection[str],
    facts: Collection[str],
    attributes: bool,
    with_orders: bool,
    with_touches: bool,
) -> dict[str, Loaded]:
    """One statement for a round's persons: write back the folded columns (``folded``: person → row), re-derive
    the order aggregates of ``order_persons`` and the touch aggregates of ``touch_persons`` from their fact rows,
    and read every person back as the rules see them (the ``facts`` they read, attributes, orders and touches
    when needed) with the tags they hold. Persons without a profile are absent."""
    if not person_ids:
        return {}
    rows: list[dict[str, Any]] = []
    for p in sorted(set(person_ids)):
        params: dict[str, Any] = {"person_id": p, "folded": p in folded, "orders": p in order_persons}
        params["touches"] = p in touch_persons
        if p in folded:
            params.update(folded[p])
        rows.append(params)
    names = tuple(sorted(facts))
    statement = _write_and_load(names, attributes, with_orders, with_touches)
    persons = [r["person_id"] for r in rows]
    result = await session.execute(statement, {"tenant": tenant, "persons": persons, "rows": _json(rows)})
    sets = [i for i, name in enumerate(names, 1) if FACTS[name] == "set"]
    numbers = [i for i, name in enumerate(names, 1) if name in _NUMERIC_FACTS]
    out: dict[str, Loaded] = {}
    for row in result:
        r: list[Any] = list(row)
        person_id = r[0]
        for i in sets:  # as profiles._plain reads them: arrays as sets, numerics as exact fractions
            r[i] = set(r[i])
        for i in numbers:
            if r[i] is not None:
                r[i] = Fraction(r[i])
        values = dict(zip(names, r[1 : len(names) + 1], strict=True))
        i = len(names) + 1
        attrs: dict[str, Any] = {}
        if attributes:
            attrs = dict(r[i] or {})
            i += 1
        orders: tuple[OrderFact, ...] = ()
        if with_orders:
            orders = tuple(OrderFact(o[0], o[1], o[2], o[3], o[4], tuple(o[5] or ())) for o in r[i] or ())
            i += 1
        touches: tuple[TouchFact, ...] = ()
        if with_touches:
            touches = tuple(TouchFact(t[0], t[1], t[2], t[3]) for t in r[i] or ())
            i += 1
        held = {t[0]: Decision(t[0], t[1], t[2], t[3]) for t in r[i] or ()}
        out[person_id] = Loaded(Profile(person_id, values, attrs, orders, touches), held)
    return out


_WRITE_CHANGES = text(
    """
    WITH gone AS (
      DELETE FROM person_tags pt
      USING unnest(CAST(:del_persons AS text[]), CAST(:del_tags AS text[])) AS d(person_id, tag)
      WHERE pt.tenant = CAST(:tenant AS varchar) AND pt.person_id = ANY(CAST(:del_persons AS text[]))
        AND pt.person_id = d.person_id AND pt.tag = d.tag
    ), gained AS (
      INSERT INTO person_tags (tenant, person_id, tag, family, rule_id, rule_version, tagged_at, facts)
      SELECT CAST(:tenant AS varchar), v.person_id, v.tag, v.family, v.rule_id, v.rule_version, :now, v.facts
      FROM jsonb_to_recordset(CAST(:added AS jsonb))
        AS v(person_id text, tag text, family text, rule_id text, rule_version int, facts jsonb)
      ON CONFLICT DO NOTHING
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
    added: Sequence[tuple[str, Decision, dict[str, Any]]],
    restamped: Sequence[tuple[str, Decision]],
    now: datetime,
    event_type: str,
    topic: str,
    events: Sequence[tuple[str, str, bytes]],
) -> None:
    """``write_tags`` and ``queue_events`` in one statement (data-modifying CTEs on disjoint rows): many persons'
    removals, gains (each with the facts that decided), re-stamps and their `tags.changed` outbox rows."""
    if not (removed or added or restamped or events):
        return
    added_rows = [
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
    await session.execute(
        _WRITE_CHANGES,
        {
            "tenant": tenant,
            "now": now,
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
