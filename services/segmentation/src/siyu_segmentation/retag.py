"""Re-tagging after facts changed: evaluate the tenant's rules, diff, write, emit on change.

``retag`` does one person (merges); ``retag_many`` does the persons of a batch round with one query to load them
and at most four statements to write every change (tags removed, gained, re-stamped; outbox rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters import bulk
from siyu_segmentation.adapters import profiles as profile_repo
from siyu_segmentation.adapters import tags as tag_repo
from siyu_segmentation.adapters.rule_sql import compile_condition
from siyu_segmentation.adapters.rule_store import RuleCache, RuleSet
from siyu_segmentation.adapters.tables import profiles
from siyu_segmentation.domain.facts import Profile
from siyu_segmentation.domain.tagging import Decision, TagDiff, decide, deciding_facts, diff, scopes_for
from siyu_shared.events.catalog import TagsChanged
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

    async def retag_many(
        self,
        session: AsyncSession,
        *,
        rule_set: RuleSet,
        tenant: str,
        causes: Mapping[str, str],
        now: datetime,
    ) -> dict[str, TagDiff]:
        """Re-tag every person of ``causes`` (person → the event that changed their facts): one `tags.changed`
        per person whose tag set really changed, caused by that event."""
        if not causes or (not rule_set.rules and rule_set.version == 0):
            return {}
        # The rules are decided in SQL (the compiler the backfills use), in the query that loads the persons.
        scopes = scopes_for(rule_set.rules, rule_set.exclusive)
        cases = [
            case(*((compile_condition(r.condition, profiles, now), r.tag) for r in s.rules), else_=None) for s in scopes
        ]
        people = await bulk.load_people(
            session,
            tenant=tenant,
            person_ids=list(causes),
            desired=array(cases) if cases else None,
            with_orders=rule_set.needs_orders,
            with_touches=rule_set.needs_touches,
        )
        by_tag = {r.tag: Decision(r.tag, r.family, r.rule_id, r.version) for r in rule_set.rules}
        removed: list[tuple[str, Decision]] = []
        added: list[tuple[str, Decision, dict[str, Any]]] = []
        restamped: list[tuple[str, Decision]] = []
        events: list[tuple[str, str, bytes]] = []
        changes: dict[str, TagDiff] = {}
        for person_id in sorted(causes):
            person = people.get(person_id)
            current = person.held if person is not None else {}
            desired = {t: by_tag[t] for t in person.desired_tags} if person is not None else {}
            change = diff(current, desired)
            changes[person_id] = change
            kept = [d for t, d in desired.items() if t in current and current[t].rule_version != d.rule_version]
            restamped += [(person_id, d) for d in kept]
            if not change.changed:
                continue
            facts = deciding_facts(
                rule_set.rules,
                [d.tag for d in (*change.added, *change.removed)],
                person.profile() if person is not None else Profile(person_id),
                now,
            )
            removed += [(person_id, d) for d in change.removed]
            added += [(person_id, d, facts) for d in change.added]
            event_id, payload = tag_repo.tags_changed_payload(
                tenant=tenant, person_id=person_id, change=change, facts=facts, now=now, cause=causes[person_id]
            )
            events.append((event_id, person_id, payload))
        await bulk.write_tags(session, tenant=tenant, removed=removed, added=added, restamped=restamped, now=now)
        await bulk.queue_events(
            session,
            tenant=tenant,
            event_type=TagsChanged.event_type,
            topic=self.topics.name(TagsChanged.topic),
            events=events,
        )
        return changes
