"""A person's profile read back as the domain's ``Profile`` (the API), merges and erasures. Events write profiles
set-based through ``bulk.py``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import delete, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters.tables import order_facts, person_tags, profiles, touch_facts
from siyu_segmentation.domain.facts import FACTS, OrderFact, Profile, TouchFact
from siyu_segmentation.domain.merge import fold_profiles
from siyu_segmentation.domain.tagging import Decision


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
    """Fold the merged persons' facts into the survivor, hand it their orders and touches and delete them (their tags
    are dropped by the caller, who then re-derives the survivor's order and touch aggregates as a batch round does)."""
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


async def erase_person(session: AsyncSession, *, tenant: str, person_id: str) -> None:
    """Wipe everything kept about the person (facts, orders, touches, tags)."""
    for table in (profiles, order_facts, touch_facts, person_tags):
        await session.execute(delete(table).where(table.c.tenant == tenant, table.c.person_id == person_id))
