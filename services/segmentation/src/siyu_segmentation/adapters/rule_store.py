"""Rules and families of a tenant, versioned; the tenant's rules version that invalidates cached rule sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters.tables import families, rule_versions, rules, tenant_state
from siyu_segmentation.domain.compiled import CompiledRules
from siyu_segmentation.domain.rules import Aggregate, needs_schedule, walk
from siyu_segmentation.domain.tagging import ActiveRule, RuleBody

# Advisory lock namespace of this service: (7301, hashtext(tenant)).
_SHARED = text("SELECT pg_advisory_xact_lock_shared(7301, hashtext(:tenant))")
_SHARED_WITH_VERSION = text(
    "SELECT (SELECT rules_version FROM tenant_state WHERE tenant = CAST(:tenant AS varchar))"
    " FROM (SELECT pg_advisory_xact_lock_shared(7301, hashtext(CAST(:tenant AS varchar)))) AS locked"
)
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(7301, hashtext(:tenant))")


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: int
    rules: tuple[ActiveRule, ...]
    exclusive: dict[str, bool]
    needs_orders: bool
    needs_touches: bool
    compiled: CompiledRules  # compiled once per version: the batch path's evaluator


class RuleCache:
    """Compiled rule sets per tenant, reused while the tenant's rules version is unchanged."""

    def __init__(self) -> None:
        self._sets: dict[str, RuleSet] = {}

    async def get(self, session: AsyncSession, tenant: str, *, lock_shared: bool = False) -> RuleSet:
        """The tenant's rule set; with ``lock_shared`` also takes the tenant lock shared in the same round trip."""
        if lock_shared:
            version = int(await session.scalar(_SHARED_WITH_VERSION, {"tenant": tenant}) or 0)
        else:
            version = await rules_version(session, tenant)
        cached = self._sets.get(tenant)
        if cached is not None and cached.version == version:
            return cached
        loaded = await load_rule_set(session, tenant, version)
        self._sets[tenant] = loaded
        return loaded


async def lock_tenant_shared(session: AsyncSession, tenant: str) -> None:
    """Live events take the tenant lock shared; a backfill chunk takes it exclusive (see reevaluate.py)."""
    await session.execute(_SHARED, {"tenant": tenant})


async def lock_tenant_exclusive(session: AsyncSession, tenant: str) -> None:
    await session.execute(_EXCLUSIVE, {"tenant": tenant})


async def rules_version(session: AsyncSession, tenant: str) -> int:
    value = await session.scalar(select(tenant_state.c.rules_version).where(tenant_state.c.tenant == tenant))
    return int(value or 0)


async def bump_rules_version(session: AsyncSession, tenant: str) -> None:
    stmt = pg_insert(tenant_state).values(tenant=tenant, rules_version=1)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=["tenant"], set_={"rules_version": tenant_state.c.rules_version + 1})
    )


def _active(row: RowMapping) -> ActiveRule:
    body = RuleBody.model_validate(row["body"])
    return ActiveRule(row["rule_id"], row["version"], body.tag, body.family, body.priority, body.condition())


async def load_rule_set(session: AsyncSession, tenant: str, version: int | None = None) -> RuleSet:
    rows = (
        await session.execute(
            select(rules)
            .where(rules.c.tenant == tenant, rules.c.deleted_at.is_(None), rules.c.enabled)
            .order_by(rules.c.rule_id)
        )
    ).mappings()
    active = tuple(_active(r) for r in rows)
    fams = await session.execute(select(families.c.family, families.c.exclusive).where(families.c.tenant == tenant))
    leaves = [leaf for rule in active for leaf in walk(rule.condition)]
    exclusive = {f: bool(x) for f, x in fams.all()}
    return RuleSet(
        version=await rules_version(session, tenant) if version is None else version,
        rules=active,
        exclusive=exclusive,
        compiled=CompiledRules(active, exclusive),
        needs_orders=any(isinstance(leaf, Aggregate) and leaf.source == "orders" for leaf in leaves),
        needs_touches=any(isinstance(leaf, Aggregate) and leaf.source == "touches" for leaf in leaves),
    )


async def get_rule(session: AsyncSession, tenant: str, rule_id: str) -> RowMapping | None:
    return (
        (
            await session.execute(
                select(rules).where(rules.c.tenant == tenant, rules.c.rule_id == rule_id, rules.c.deleted_at.is_(None))
            )
        )
        .mappings()
        .first()
    )


async def list_rules(session: AsyncSession, tenant: str) -> list[RowMapping]:
    rows = await session.execute(
        select(rules).where(rules.c.tenant == tenant, rules.c.deleted_at.is_(None)).order_by(rules.c.rule_id)
    )
    return list(rows.mappings())


async def tag_taken(session: AsyncSession, tenant: str, tag: str, rule_id: str) -> bool:
    other = await session.scalar(
        select(rules.c.rule_id).where(
            rules.c.tenant == tenant, rules.c.tag == tag, rules.c.deleted_at.is_(None), rules.c.rule_id != rule_id
        )
    )
    return other is not None


async def save_rule(
    session: AsyncSession, *, tenant: str, rule_id: str, body: RuleBody, pack: str | None = None
) -> int:
    """Create the rule or write its next version; returns the version. Deleted rules come back at a new version."""
    payload: dict[str, Any] = body.model_dump(mode="json")
    current = await session.scalar(
        select(rules.c.version).where(rules.c.tenant == tenant, rules.c.rule_id == rule_id).with_for_update()
    )
    version = (current or 0) + 1
    values = {
        "version": version,
        "tag": body.tag,
        "family": body.family,
        "priority": body.priority,
        "enabled": body.enabled,
        "time_dependent": needs_schedule(body.condition()),
        "body": payload,
        "pack": pack,
        "updated_at": func.now(),
        "deleted_at": None,
    }
    stmt = pg_insert(rules).values(tenant=tenant, rule_id=rule_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["tenant", "rule_id"], set_=values))
    await session.execute(
        pg_insert(rule_versions).values(tenant=tenant, rule_id=rule_id, version=version, body=payload)
    )
    if body.family is not None:
        await session.execute(pg_insert(families).values(tenant=tenant, family=body.family).on_conflict_do_nothing())
    await bump_rules_version(session, tenant)
    return version


async def delete_rule(session: AsyncSession, *, tenant: str, rule_id: str) -> bool:
    result = await session.execute(
        update(rules)
        .where(rules.c.tenant == tenant, rules.c.rule_id == rule_id, rules.c.deleted_at.is_(None))
        .values(deleted_at=func.now(), version=rules.c.version + 1)
        .returning(rules.c.rule_id)
    )
    if result.first() is None:
        return False
    await bump_rules_version(session, tenant)
    return True


async def save_family(
    session: AsyncSession, *, tenant: str, family: str, exclusive: bool, description: str = ""
) -> None:
    stmt = pg_insert(families).values(tenant=tenant, family=family, exclusive=exclusive, description=description)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant", "family"], set_={"exclusive": exclusive, "description": description}
        )
    )
    await bump_rules_version(session, tenant)


async def list_families(session: AsyncSession, tenant: str) -> list[RowMapping]:
    rows = await session.execute(select(families).where(families.c.tenant == tenant).order_by(families.c.family))
    return list(rows.mappings())


async def tenants_with_time_rules(session: AsyncSession) -> list[str]:
    """Every tenant with a live time-dependent rule (the recency sweep's work list; not tenant data)."""
    rows = await session.execute(
        select(rules.c.tenant).where(rules.c.deleted_at.is_(None), rules.c.enabled, rules.c.time_dependent).distinct()
    )
    return [r for (r,) in rows]
