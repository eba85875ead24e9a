"""Re-tagging after facts changed: evaluate the tenant's rules, diff, write, emit on change.

``retag_many`` does the persons of a batch round (or the survivor of a merge), on their locked profile rows: one
statement reads their orders, touches and tags, the compiled rules (the only Python evaluator of the rule language)
decide, one statement writes every tag change and outbox row.
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
from siyu_segmentation.domain.aggregates import order_aggregates, touch_aggregates
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
        people: Mapping[str, bulk.LockedProfile],
        order_persons: Collection[str] = (),
        touch_persons: Collection[str] = (),
    ) -> dict[str, TagDiff]:
        """Re-tag every person of ``causes`` (person → the event that changed their facts): one `tags.changed`
        per person whose tag set really changed, caused by that event.

        ``people`` holds the locked profile rows (a person of ``causes`` without one has no facts and holds no
        tag). One statement reads the persons' orders, touches and tags; the order / touch aggregates of
        ``order_persons`` / ``touch_persons`` are re-derived from them into their rows (written by
        ``bulk.write_profiles`` at the end of the batch); the rules (compiled once per rule-set version) decide in
        Python; one statement writes every tag change and outbox row."""
        if not causes:
            return {}
        compiled = rule_set.compiled
        order_set, touch_set = set(order_persons), set(touch_persons)
        loaded = await bulk.load_round(
            session,
            tenant=tenant,
            person_ids=list(causes),
            orders=rule_set.needs_orders or bool(order_set),
            touches=rule_set.needs_touches or bool(touch_set),
        )
        for person_id in order_set:
            _update(people.get(person_id), order_aggregates(loaded[person_id].orders))
        for person_id in touch_set:
            _update(people.get(person_id), touch_aggregates(loaded[person_id].touches))
        if not rule_set.rules and rule_set.version == 0:
            return {}  # a tenant that never had a rule holds no tags
        removed: list[tuple[str, Decision]] = []
        added: list[tuple[str, Decision, dict[str, Any]]] = []
        restamped: list[tuple[str, Decision]] = []
        events: list[tuple[str, str, bytes]] = []
        changes: dict[str, TagDiff] = {}
        for person_id in sorted(causes):
            person = loaded[person_id]
            current = person.held
            locked = people.get(person_id)
            if locked is not None:
                profile = bulk.profile_of(person_id, locked.row, person, compiled.facts)
                desired = compiled.decide(profile, now)
            else:
                profile, desired = Profile(person_id), {}
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


def _update(person: bulk.LockedProfile | None, values: Mapping[str, Any]) -> None:
    """Set re-derived aggregates on a locked row, marking it to be written when they changed."""
    if person is None:
        return
    row = person.row
    if any(row[k] != v for k, v in values.items()):
        row.update(values)
        person.dirty = True
