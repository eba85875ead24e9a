"""Re-tagging one person after their facts changed: evaluate the tenant's rules, diff, write, emit on change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters import profiles as profile_repo
from siyu_segmentation.adapters import tags as tag_repo
from siyu_segmentation.adapters.rule_store import RuleCache, lock_tenant_shared
from siyu_segmentation.domain.facts import Profile
from siyu_segmentation.domain.tagging import TagDiff, decide, deciding_facts, diff
from siyu_shared.events.topics import TopicNames


@dataclass(frozen=True, slots=True)
class Tagger:
    cache: RuleCache
    topics: TopicNames

    async def begin(self, session: AsyncSession, tenant: str) -> None:
        """Call before changing a person's facts: a running backfill chunk of the tenant finishes first."""
        await lock_tenant_shared(session, tenant)

    async def retag(self, session: AsyncSession, *, tenant: str, person_id: str, now: datetime, cause: str) -> TagDiff:
        rule_set = await self.cache.get(session, tenant)
        profile = await profile_repo.load_profile(
            session,
            tenant=tenant,
            person_id=person_id,
            with_orders=rule_set.needs_orders,
            with_touches=rule_set.needs_touches,
        )
        desired = decide(rule_set.rules, rule_set.exclusive, profile, now) if profile is not None else {}
        current = await tag_repo.current_tags(session, tenant=tenant, person_id=person_id)
        change = diff(current, desired)
        restamped = [d for t, d in desired.items() if t in current and current[t].rule_version != d.rule_version]
        if not change.changed and not restamped:
            return change
        facts = deciding_facts(
            rule_set.rules,
            [d.tag for d in (*change.added, *change.removed)],
            profile or Profile(person_id),
            now,
        )
        await tag_repo.apply_tags(
            session, tenant=tenant, person_id=person_id, change=change, kept_versions=restamped, facts=facts, now=now
        )
        if change.changed:
            await tag_repo.emit_tags_changed(
                session,
                tenant=tenant,
                person_id=person_id,
                change=change,
                facts=facts,
                now=now,
                cause=cause,
                topics=self.topics,
            )
        return change
