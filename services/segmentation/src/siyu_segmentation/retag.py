"""Re-tagging one person after their facts changed: evaluate the tenant's rules, diff, write, emit on change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters import profiles as profile_repo
from siyu_segmentation.adapters import tags as tag_repo
from siyu_segmentation.adapters.rule_store import RuleCache, RuleSet
from siyu_segmentation.domain.facts import Profile
from siyu_segmentation.domain.tagging import TagDiff, decide, deciding_facts, diff
from siyu_shared.events.topics import TopicNames


@dataclass(frozen=True, slots=True)
class Tagger:
    cache: RuleCache
    topics: TopicNames

    async def begin(self, session: AsyncSession, tenant: str) -> RuleSet:
        """Call before changing a person's facts: takes the tenant lock shared (a backfill chunk in flight
        finishes first) and returns the tenant's rules, in one round trip."""
        return await self.cache.get(session, tenant, lock_shared=True)

    async def retag(
        self, session: AsyncSession, *, rule_set: RuleSet, tenant: str, person_id: str, now: datetime, cause: str
    ) -> TagDiff:
        if not rule_set.rules and rule_set.version == 0:
            return diff({}, {})  # a tenant that never had a rule holds no tags
        profile, current = await profile_repo.load_person(
            session,
            tenant=tenant,
            person_id=person_id,
            with_orders=rule_set.needs_orders,
            with_touches=rule_set.needs_touches,
        )
        desired = decide(rule_set.rules, rule_set.exclusive, profile, now) if profile is not None else {}
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
