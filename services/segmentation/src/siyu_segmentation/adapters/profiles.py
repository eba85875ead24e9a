"""Profile facts: written from events, read back as the domain's ``Profile``. All SQL on profiles lives here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Text, case, cast, delete, func, literal, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters.tables import order_facts, order_refunds, person_tags, profiles, touch_facts
from siyu_segmentation.domain.facts import FACTS, OrderFact, Profile, TouchFact
from siyu_segmentation.domain.merge import fold_profiles
from siyu_segmentation.domain.tagging import Decision
from siyu_shared.events.catalog import ContactAdded, LeadCaptured, SourceRef


def _union(column: str, members: list[str]) -> Any:
    """`column ∪ members`, sorted and distinct (a set is kept as a sorted text[]; seg_union is in the migration)."""
    return func.seg_union(profiles.c[column], cast(members, ARRAY(Text)))


async def touch_profile(
    session: AsyncSession,
    *,
    tenant: str,
    person_id: str,
    seen_at: datetime | None,
    new: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
    add: Mapping[str, Iterable[str | None]] | None = None,
) -> None:
    """Create the profile if new (with ``new`` values), else apply ``changes``; widen first/last seen by
    ``seen_at``; add members to set columns (``add``) either way."""
    first: dict[str, Any] = {"first_seen_at": seen_at, "last_seen_at": seen_at, **(new or {})}
    sets: dict[str, Any] = {"updated_at": func.now(), **(changes or {})}
    if seen_at is not None:
        sets["first_seen_at"] = func.least(profiles.c.first_seen_at, seen_at)
        sets["last_seen_at"] = func.greatest(profiles.c.last_seen_at, seen_at)
    for column, members in (add or {}).items():
        values = sorted({m for m in members if m})
        if values:
            sets[column] = _union(column, values)
            first[column] = values
    stmt = pg_insert(profiles).values(tenant=tenant, person_id=person_id, **first)
    await session.execute(stmt.on_conflict_do_update(index_elements=["tenant", "person_id"], set_=sets))


async def remove_from_set(session: AsyncSession, *, tenant: str, person_id: str, column: str, member: str) -> None:
    await session.execute(
        update(profiles)
        .where(profiles.c.tenant == tenant, profiles.c.person_id == person_id)
        .values({column: func.array_remove(profiles.c[column], member), "updated_at": func.now()})
    )


async def set_wecom_removed_if_no_staff(session: AsyncSession, *, tenant: str, person_id: str) -> None:
    await session.execute(
        update(profiles)
        .where(
            profiles.c.tenant == tenant,
            profiles.c.person_id == person_id,
            func.cardinality(profiles.c.wecom_staff) == 0,
            profiles.c.wecom_status == "friend",
        )
        .values(wecom_status="removed")
    )


async def record_order(
    session: AsyncSession,
    *,
    tenant: str,
    person_id: str,
    order_id: str,
    paid_at: datetime,
    amount_fen: int,
    categories: Sequence[str],
) -> None:
    await session.execute(
        pg_insert(order_facts)
        .values(
            tenant=tenant,
            order_id=order_id,
            person_id=person_id,
            paid_at=paid_at,
            amount_fen=amount_fen,
            categories=sorted(set(categories)),
        )
        .on_conflict_do_nothing(index_elements=["tenant", "order_id"])
    )


async def record_refund(
    session: AsyncSession, *, tenant: str, order_id: str, refund_id: str, amount_fen: int, full: bool
) -> bool:
    """Apply a refund once per refund id; False when the order is unknown or the refund was already applied."""
    known = await session.scalar(
        select(literal(True)).where(order_facts.c.tenant == tenant, order_facts.c.order_id == order_id)
    )
    if not known:
        return False
    fresh = await session.scalar(
        pg_insert(order_refunds)
        .values(tenant=tenant, refund_id=refund_id, order_id=order_id)
        .on_conflict_do_nothing()
        .returning(order_refunds.c.refund_id)
    )
    if fresh is None:
        return False
    refunded = func.least(order_facts.c.amount_fen, order_facts.c.refunded_fen + amount_fen)
    await session.execute(
        update(order_facts)
        .where(order_facts.c.tenant == tenant, order_facts.c.order_id == order_id)
        .values(refunded_fen=refunded, voided=order_facts.c.voided | full | (refunded >= order_facts.c.amount_fen))
    )
    return True


async def void_order(session: AsyncSession, *, tenant: str, order_id: str) -> None:
    await session.execute(
        update(order_facts)
        .where(order_facts.c.tenant == tenant, order_facts.c.order_id == order_id)
        .values(voided=True)
    )


_RECOMPUTE_ORDERS = text(
    """
    UPDATE profiles p SET
      order_count = s.cnt, paid_fen = s.paid, refunded_fen = s.refunded, net_fen = s.paid - s.refunded,
      first_order_at = s.first_at, last_order_at = s.last_at, avg_order_fen = s.avg_fen,
      mean_interval_days = CASE WHEN s.cnt > 1
        THEN CAST(extract(epoch FROM s.last_at - s.first_at) AS numeric) / 86400 / (s.cnt - 1) END,
      categories = s.cats, updated_at = now()
    FROM (
      SELECT count(*) FILTER (WHERE NOT o.voided) AS cnt,
             coalesce(sum(o.amount_fen), 0) AS paid, coalesce(sum(o.refunded_fen), 0) AS refunded,
             min(o.paid_at) FILTER (WHERE NOT o.voided) AS first_at,
             max(o.paid_at) FILTER (WHERE NOT o.voided) AS last_at,
             avg(o.amount_fen) FILTER (WHERE NOT o.voided) AS avg_fen,
             ARRAY(SELECT DISTINCT c FROM order_facts o2, unnest(o2.categories) c
                   WHERE o2.tenant = :tenant AND o2.person_id = :person AND NOT o2.voided ORDER BY 1) AS cats
      FROM order_facts o WHERE o.tenant = :tenant AND o.person_id = :person
    ) s
    WHERE p.tenant = :tenant AND p.person_id = :person
    """
)

_RECOMPUTE_TOUCHES = text(
    """
    UPDATE profiles p SET touches_received = s.cnt, last_touch_at = s.last_at, updated_at = now()
    FROM (SELECT count(*) AS cnt, max(occurred_at) AS last_at FROM touch_facts
          WHERE tenant = :tenant AND person_id = :person AND status = 'sent') s
    WHERE p.tenant = :tenant AND p.person_id = :person
    """
)


async def recompute_orders(session: AsyncSession, *, tenant: str, person_id: str) -> None:
    await session.execute(_RECOMPUTE_ORDERS, {"tenant": tenant, "person": person_id})


async def record_touch(
    session: AsyncSession, *, tenant: str, person_id: str, touch_id: str, at: datetime, channel: str, status: str
) -> None:
    stmt = pg_insert(touch_facts).values(
        tenant=tenant, touch_id=touch_id, person_id=person_id, occurred_at=at, channel=channel, status=status
    )
    # A touch may be skipped or fail, then be sent: the latest status wins.
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant", "touch_id"], set_={"status": stmt.excluded.status, "occurred_at": at}
        )
    )
    await session.execute(_RECOMPUTE_TOUCHES, {"tenant": tenant, "person": person_id})


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return Fraction(value)
    if isinstance(value, list):
        return set(value)
    return value


def _json_rows(table: Any, columns: Sequence[str], tenant: str, person_id: str) -> Any:
    """The person's rows of ``table`` as one JSON array of arrays (one round trip for the whole profile)."""
    row = func.jsonb_build_array(*(table.c[c] for c in columns))
    return (
        select(func.coalesce(func.jsonb_agg(row), text("'[]'::jsonb")))
        .where(table.c.tenant == tenant, table.c.person_id == person_id)
        .scalar_subquery()
    )


async def load_person(
    session: AsyncSession, *, tenant: str, person_id: str, with_orders: bool = True, with_touches: bool = True
) -> tuple[Profile | None, dict[str, Decision]]:
    """The person's facts (orders and touches only when a rule needs them) and current tags, in one query."""
    empty: Any = literal_column("'[]'::jsonb")
    order_cols = ("order_id", "paid_at", "amount_fen", "refunded_fen", "voided", "categories")
    touch_cols = ("touch_id", "occurred_at", "channel", "status")
    tag_cols = ("tag", "family", "rule_id", "rule_version")
    query = select(
        profiles,
        (_json_rows(order_facts, order_cols, tenant, person_id) if with_orders else empty).label("_orders"),
        (_json_rows(touch_facts, touch_cols, tenant, person_id) if with_touches else empty).label("_touches"),
        _json_rows(person_tags, tag_cols, tenant, person_id).label("_tags"),
    ).where(profiles.c.tenant == tenant, profiles.c.person_id == person_id)
    row = (await session.execute(query)).mappings().first()
    if row is None:
        return None, await _tags_only(session, tenant=tenant, person_id=person_id)
    values = {name: _plain(row[name]) for name in FACTS}
    orders = tuple(
        OrderFact(o[0], datetime.fromisoformat(o[1]), int(o[2]), int(o[3]), bool(o[4]), tuple(o[5] or ()))
        for o in row["_orders"]
    )
    touches = tuple(TouchFact(t[0], datetime.fromisoformat(t[1]), t[2], t[3]) for t in row["_touches"])
    held = {t[0]: Decision(t[0], t[1], t[2], int(t[3])) for t in row["_tags"]}
    return Profile(person_id, values, dict(row["attributes"] or {}), orders, touches), held


async def _tags_only(session: AsyncSession, *, tenant: str, person_id: str) -> dict[str, Decision]:
    rows = await session.execute(
        select(person_tags.c.tag, person_tags.c.family, person_tags.c.rule_id, person_tags.c.rule_version).where(
            person_tags.c.tenant == tenant, person_tags.c.person_id == person_id
        )
    )
    return {r.tag: Decision(r.tag, r.family, r.rule_id, r.rule_version) for r in rows}


async def load_profile(session: AsyncSession, *, tenant: str, person_id: str) -> Profile | None:
    profile, _ = await load_person(session, tenant=tenant, person_id=person_id)
    return profile


async def merge_profiles(session: AsyncSession, *, tenant: str, survivor_id: str, merged_ids: Sequence[str]) -> None:
    """Fold the merged persons' facts into the survivor and delete them (their tags are dropped by the caller)."""
    merged = [m for m in merged_ids if m != survivor_id]
    if not merged:
        return
    rows = (
        (
            await session.execute(
                select(profiles).where(profiles.c.tenant == tenant, profiles.c.person_id.in_([survivor_id, *merged]))
            )
        )
        .mappings()
        .all()
    )
    by_id = {r["person_id"]: dict(r) for r in rows}
    folded = fold_profiles(by_id.get(survivor_id), [by_id[m] for m in merged if m in by_id])
    if folded is not None:
        folded.pop("person_id", None)
        folded.pop("tenant", None)
        folded["updated_at"] = func.now()
        await session.execute(
            pg_insert(profiles)
            .values(tenant=tenant, person_id=survivor_id, **folded)
            .on_conflict_do_update(index_elements=["tenant", "person_id"], set_=folded)
        )
    for table in (order_facts, touch_facts):
        await session.execute(
            update(table).where(table.c.tenant == tenant, table.c.person_id.in_(merged)).values(person_id=survivor_id)
        )
    await session.execute(delete(profiles).where(profiles.c.tenant == tenant, profiles.c.person_id.in_(merged)))
    await recompute_orders(session, tenant=tenant, person_id=survivor_id)
    await session.execute(_RECOMPUTE_TOUCHES, {"tenant": tenant, "person": survivor_id})


async def erase_person(session: AsyncSession, *, tenant: str, person_id: str) -> None:
    """Wipe everything kept about the person (facts, orders, touches, tags)."""
    for table in (profiles, order_facts, touch_facts, person_tags):
        await session.execute(delete(table).where(table.c.tenant == tenant, table.c.person_id == person_id))


async def record_lead(session: AsyncSession, *, tenant: str, lead: LeadCaptured) -> None:
    src = lead.source
    await touch_profile(
        session,
        tenant=tenant,
        person_id=lead.person_id,
        seen_at=lead.occurred_at,
        new={
            "first_channel": src.channel,
            "lead_count": 1,
            "incentive": lead.incentive,
            "has_phone": lead.has_phone,
            "attributes": dict(lead.attributes),
        },
        changes={
            "first_channel": _first_channel(lead.occurred_at, src.channel),
            "lead_count": profiles.c.lead_count + 1,
            "incentive": profiles.c.incentive | lead.incentive,
            "has_phone": profiles.c.has_phone | lead.has_phone,
            # The latest answers win over older ones.
            "attributes": profiles.c.attributes.concat(dict(lead.attributes)),
        },
        add={**_source_sets(src), "lead_kinds": [lead.kind]},
    )


async def record_contact_added(session: AsyncSession, *, tenant: str, contact: ContactAdded) -> None:
    at = contact.occurred_at
    await touch_profile(
        session,
        tenant=tenant,
        person_id=contact.person_id,
        seen_at=at,
        new={"first_channel": contact.source.channel, "wecom_status": "friend", "wecom_added_at": at},
        changes={
            "first_channel": _first_channel(at, contact.source.channel),
            "wecom_status": "friend",
            "wecom_added_at": func.least(profiles.c.wecom_added_at, at),
        },
        add={**_source_sets(contact.source), "wecom_staff": [contact.staff_id]},
    )


def _first_channel(at: datetime, channel: str) -> Any:
    """The channel of the earliest sighting, even when events arrive out of order."""
    return case(
        (profiles.c.first_seen_at.is_(None) | (profiles.c.first_seen_at > at), channel),
        else_=profiles.c.first_channel,
    )


def _source_sets(src: SourceRef) -> dict[str, list[str | None]]:
    return {
        "channels": [src.channel],
        "account_kinds": [src.account_kind if src.account_kind != "unknown" else None],
        "partner_ids": [src.partner_id],
        "campaign_ids": [src.campaign_id],
    }
