"""Service functions behind the API: rule changes queue their backfill in the same transaction."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters import jobs, rule_store
from siyu_segmentation.adapters.rule_sql import compile_condition
from siyu_segmentation.adapters.tables import person_tags, profiles
from siyu_segmentation.domain.rules import Condition
from siyu_segmentation.domain.tagging import RuleBody
from siyu_segmentation.packs import Pack


class Conflict(Exception):
    pass


async def put_rule(session: AsyncSession, *, tenant: str, rule_id: str, body: RuleBody) -> tuple[int, int]:
    """Save the rule's next version and queue the backfill that re-decides its tag(s); (version, backfill id)."""
    if await rule_store.tag_taken(session, tenant, body.tag, rule_id):
        raise Conflict(f"tag {body.tag!r} is already decided by another rule")
    previous = await rule_store.get_rule(session, tenant, rule_id)
    version = await rule_store.save_rule(session, tenant=tenant, rule_id=rule_id, body=body)
    dropped = [previous["tag"]] if previous is not None and previous["tag"] != body.tag else []
    rule_ids = [rule_id]
    if previous is not None and previous["family"] and previous["family"] != body.family:
        # Leaving a family can hand its members' people to another tag of it: re-decide the whole old family.
        rule_ids += [
            r["rule_id"] for r in await rule_store.list_rules(session, tenant) if r["family"] == previous["family"]
        ]
    job = await jobs.queue_backfill(
        session, tenant=tenant, reason=f"rule {rule_id} v{version}", rule_ids=rule_ids, drop_tags=dropped
    )
    return version, job


async def delete_rule(session: AsyncSession, *, tenant: str, rule_id: str) -> int | None:
    previous = await rule_store.get_rule(session, tenant, rule_id)
    if previous is None or not await rule_store.delete_rule(session, tenant=tenant, rule_id=rule_id):
        return None
    siblings = [previous["family"]] if previous["family"] else []
    family_rules = [r["rule_id"] for r in await rule_store.list_rules(session, tenant) if r["family"] in siblings]
    return await jobs.queue_backfill(
        session,
        tenant=tenant,
        reason=f"rule {rule_id} deleted",
        rule_ids=family_rules,
        drop_tags=[previous["tag"]],
    )


async def install_pack(session: AsyncSession, *, tenant: str, pack: Pack) -> tuple[list[str], int]:
    for family in pack.families:
        await rule_store.save_family(
            session, tenant=tenant, family=family.name, exclusive=family.exclusive, description=family.description
        )
    installed = []
    for rule in pack.rules:
        body = RuleBody.model_validate(rule.model_dump(exclude={"id"}))
        if await rule_store.tag_taken(session, tenant, body.tag, rule.id):
            raise Conflict(f"tag {body.tag!r} is already decided by another rule")
        await rule_store.save_rule(session, tenant=tenant, rule_id=rule.id, body=body, pack=pack.name)
        installed.append(rule.id)
    job = await jobs.queue_backfill(
        session, tenant=tenant, reason=f"pack {pack.name}", rule_ids=installed, drop_tags=[]
    )
    return installed, job


async def dry_run(
    session: AsyncSession, *, tenant: str, body: RuleBody, now: datetime, sample: int = 10
) -> dict[str, Any]:
    """Who would gain and lose the tag if this rule were saved (the rule alone, before family exclusivity)."""
    p, pt = profiles, person_tags
    matches = compile_condition(body.condition(), p, now)
    holds = (
        select(pt.c.person_id)
        .where(pt.c.tenant == tenant, pt.c.person_id == p.c.person_id, pt.c.tag == body.tag)
        .exists()
    )
    gain = select(p.c.person_id).where(p.c.tenant == tenant, matches, ~holds)
    lose = select(p.c.person_id).where(p.c.tenant == tenant, ~matches, holds)
    out: dict[str, Any] = {}
    for name, query in (("gain", gain), ("lose", lose)):
        out[name] = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        out[f"sample_{name}"] = list((await session.execute(query.order_by(p.c.person_id).limit(sample))).scalars())
    return out


async def members_of_condition(
    session: AsyncSession, *, tenant: str, condition: Condition, now: datetime, after: str | None, limit: int
) -> list[str]:
    p = profiles
    query = select(p.c.person_id).where(p.c.tenant == tenant, compile_condition(condition, p, now))
    if after is not None:
        query = query.where(p.c.person_id > after)
    return list((await session.execute(query.order_by(p.c.person_id).limit(limit))).scalars())


async def members_of_tag(
    session: AsyncSession, *, tenant: str, tag: str, after: str | None, limit: int
) -> list[dict[str, Any]]:
    pt = person_tags
    query = select(pt.c.person_id, pt.c.rule_id, pt.c.rule_version, pt.c.tagged_at).where(
        pt.c.tenant == tenant, pt.c.tag == tag
    )
    if after is not None:
        query = query.where(pt.c.person_id > after)
    rows = await session.execute(query.order_by(pt.c.person_id).limit(limit))
    return [dict(r) for r in rows.mappings()]


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()})
    return buffer.getvalue()
