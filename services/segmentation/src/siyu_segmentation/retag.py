"""Re-tagging after facts changed: evaluate the tenant's rules, diff, write, emit on change.

``retag_many`` does the persons of a batch round (or the survivor of a merge): one statement writes their facts
back and loads them, the compiled rules (the only Python evaluator of the rule language) decide, one statement
writes every tag change and outbox row.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_segmentation.adapters import bulk
from siyu_segmentation.adapters import tags as tag_repo
from siyu_segmentation.adapters.rule_store import RuleCache, RuleSet
from siyu_segmentation.domain.facts import Profile
from siyu_segmentation.domain.tagging import Decision, TagDiff, diff
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

    async def retag_many(
        self,
        session: AsyncSession,
        *,
        rule_set: RuleSet,
        tenant: str,
        causes: Mapping[str, str],
        now: datetime,
        folded: Mapping[str, Mapping[str, Any]] | None = None,
        order_persons: Collection[str] = (),
        touch_persons: Collection[str] = (),
    ) -> dict[str, TagDiff]:
        """Write a round's facts and re-tag every person of ``causes`` (person → the event that changed their
        facts): one `tags.changed` per person whose tag set really changed, caused by that event.

        One statement writes the folded rows back (``folded``: person → row), re-derives the order / touch
        aggregates of ``order_persons`` / ``touch_persons`` and reads the persons back with their tags; the
        rules (compiled once per rule-set version) decide in Python; one statement writes every tag change and
        outbox row."""
        if not causes:
            return {}
        compiled = rule_set.compiled
        people = await bulk.write_and_load(
            session,
            tenant=tenant,
            person_ids=list(causes),
            folded=folded or {},
            order_persons=set(order_persons),
            touch_persons=set(touch_persons),
            facts=compiled.facts,
            attributes=compiled.reads_attributes,
            with_orders=rule_set.needs_orders,
            with_touches=rule_set.needs_touches,
        )
        if not rule_set.rules and rule_set.version == 0:
            return {}  # a tenant that never had a rule holds no tags
        removed: list[tuple[str, Decision]] = []
        added: list[tuple[str, Decision, dict[str, Any]]] = []
        restamped: list[tuple[str, Decision]] = []
        events: list[tuple[str, str, bytes]] = []
        changes: dict[str, TagDiff] = {}
        for person_id in sorted(causes):
            person = people.get(person_id)
            current = person.held if person is not None else {}
            profile = person.profile if person is not None else Profile(person_id)
            desired = compiled.decide(profile, now) if person is not None else {}
            change = diff(current, desired)
            changes[person_id] = change
            for t, d in desired.items():
                held = current.get(t)
                if held is not None and held.rule_version != d.rule_version:
                    restamped.append((person_id, d))
            if not change.changed:
                continue
            facts = compiled.deciding_facts([d.tag for d in (*change.added, *change.removed)], profile, now)
            removed += [(person_id, d) for d in change.removed]
            added += [(person_id, d, facts) for d in change.added]
            event_id, payload = tag_repo.tags_changed_payload(
                tenant=tenant, person_id=person_id, change=change, facts=facts, now=now, cause=causes[person_id]
            )
            events.append((event_id, person_id, payload))
        await bulk.write_changes(
            session,
            tenant=tenant,
            removed=removed,
            added=added,
            restamped=restamped,
            now=now,
            event_type=TagsChanged.event_type,
            topic=self.topics.name(TagsChanged.topic),
            events=events,
        )
        return changes
