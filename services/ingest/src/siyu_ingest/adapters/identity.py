"""The identifier graph in SQL: who owns an identifier, new persons, attachments, merges, erasure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_ingest.adapters.tables import deliveries, identifiers, leads, orders, persons
from siyu_ingest.domain.identity import KnownPerson
from siyu_ingest.domain.models import Identifier


async def owners(
    session: AsyncSession, *, tenant: str, keys: Mapping[Identifier, str]
) -> dict[Identifier, KnownPerson]:
    """The current owner of each identifier that has one (identifiers always point at a surviving person)."""
    if not keys:
        return {}
    by_key = {(i.kind, key): i for i, key in keys.items()}
    rows = await session.execute(
        select(identifiers.c.kind, identifiers.c.value_key, persons.c.person_id, persons.c.created_at)
        .join(
            persons,
            (persons.c.tenant == identifiers.c.tenant) & (persons.c.person_id == identifiers.c.person_id),
        )
        .where(
            identifiers.c.tenant == tenant,
            tuple_(identifiers.c.kind, identifiers.c.value_key).in_(list(by_key)),
        )
    )
    return {by_key[(r.kind, r.value_key)]: KnownPerson(r.person_id, r.created_at) for r in rows}


async def database_now(session: AsyncSession) -> datetime:
    """The database clock (persons' birth times come from one clock, whichever worker host runs)."""
    now = await session.scalar(select(func.clock_timestamp()))
    assert isinstance(now, datetime)
    return now


async def merge(session: AsyncSession, *, tenant: str, survivor: str, merged: Sequence[str]) -> None:
    """Fold ``merged`` into ``survivor``: identifiers, leads and orders move; chains point at the survivor."""
    ids = list(merged)
    await session.execute(
        update(identifiers)
        .where(identifiers.c.tenant == tenant, identifiers.c.person_id.in_(ids))
        .values(person_id=survivor)
    )
    await session.execute(
        update(persons)
        .where(persons.c.tenant == tenant, persons.c.person_id.in_(ids) | persons.c.merged_into.in_(ids))
        .values(merged_into=survivor)
    )
    for table in (leads, orders):
        await session.execute(
            update(table).where(table.c.tenant == tenant, table.c.person_id.in_(ids)).values(person_id=survivor)
        )


async def current(session: AsyncSession, *, tenant: str, person_id: str) -> str:
    """The surviving person behind ``person_id`` (merges are path-compressed: one hop)."""
    merged_into = await session.scalar(
        select(persons.c.merged_into).where(persons.c.tenant == tenant, persons.c.person_id == person_id)
    )
    return merged_into or person_id


async def describe(session: AsyncSession, *, tenant: str, person_id: str) -> dict[str, object] | None:
    person = (
        await session.execute(
            select(persons.c.person_id, persons.c.created_at, persons.c.merged_into, persons.c.erased_at).where(
                persons.c.tenant == tenant, persons.c.person_id == person_id
            )
        )
    ).first()
    if person is None:
        return None
    kinds = await session.execute(
        select(identifiers.c.kind, func.count())
        .where(identifiers.c.tenant == tenant, identifiers.c.person_id == person_id)
        .group_by(identifiers.c.kind)
    )
    return {**person._mapping, "identifiers": {kind: int(n) for kind, n in kinds.all()}}


async def erase(session: AsyncSession, *, tenant: str, person_id: str) -> bool:
    """Wipe the person's personal data: encrypted values, names; keys stay so a re-import is recognised."""
    result = await session.execute(
        update(persons)
        .where(persons.c.tenant == tenant, persons.c.person_id == person_id, persons.c.merged_into.is_(None))
        .values(erased_at=func.now())
    )
    if not getattr(result, "rowcount", 0):
        return False
    await session.execute(
        update(identifiers)
        .where(identifiers.c.tenant == tenant, identifiers.c.person_id == person_id)
        .values(value_enc=None)
    )
    await session.execute(
        update(leads)
        .where(leads.c.tenant == tenant, leads.c.person_id == person_id)
        .values(name_enc=None, partial_phone_enc=None, attributes={})
    )
    # Raw deliveries behind the person's leads hold their data in clear: keep the row (dedupe), drop the body.
    await session.execute(
        update(deliveries)
        .where(
            deliveries.c.tenant == tenant,
            deliveries.c.id.in_(
                select(leads.c.delivery_id).where(leads.c.tenant == tenant, leads.c.person_id == person_id)
            ),
        )
        .values(body=b"")
    )
    return True
