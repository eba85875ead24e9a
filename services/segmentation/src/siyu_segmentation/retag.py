"""Re-tagging after facts changed: evaluate the tenant's rules, diff, emit on change, write once per batch.

A ``Retagging`` covers one tenant's stretch of a batch (or a merge's survivor) on the locked profile rows: each
round reads its persons' orders, touches (and, the first time, tags) in one statement, the compiled rules (the only
Python evaluator of the rule language) decide, and every real change gets its `tags.changed`, caused by the event
that made it, exactly as one event at a time. The tags held are carried in memory from round to round; ``finish``
writes the net tag changes and the events in one statement, then the profile rows in one more.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
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

    def retagging(
        self, session: AsyncSession, *, rule_set: RuleSet, tenant: str, people: Mapping[str, bulk.LockedProfile]
    ) -> Retagging:
        """Re-tag persons of ``people`` (their locked profile rows; a person without one has no facts and holds
        no tag) round after round, then ``finish``."""
        return Retagging(self, session, rule_set, tenant, people)


@dataclass(slots=True)
class _Gain:
    at: datetime
    facts: dict[str, Any]


@dataclass(slots=True)
class Retagging:
    tagger: Tagger
    session: AsyncSession
    rule_set: RuleSet
    tenant: str
    people: Mapping[str, bulk.LockedProfile]
    initial: dict[str, dict[str, Decision]] = field(default_factory=dict)  # as in the table before
    held: dict[str, dict[str, Decision]] = field(default_factory=dict)  # as after the last round
    gained: dict[tuple[str, str], _Gain] = field(default_factory=dict)  # the last gain of a tag in the batch
    events: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def round(
        self,
        *,
        causes: Mapping[str, str],
        now: datetime,
        order_persons: Collection[str] = (),
        touch_persons: Collection[str] = (),
    ) -> dict[str, TagDiff]:
        """Re-tag every person of ``causes`` (person → the event that changed their facts): one `tags.changed`
        per person whose tag set really changed, caused by that event. The order / touch aggregates of
        ``order_persons`` / ``touch_persons`` are first re-derived from their rows."""
        if not causes:
            return {}
        rule_set, compiled = self.rule_set, self.rule_set.compiled
        order_set, touch_set = set(order_persons), set(touch_persons)
        unknown = [p for p in causes if p not in self.held]
        loaded = await bulk.load_round(
            self.session,
            tenant=self.tenant,
            person_ids=list(causes),
            orders=rule_set.needs_orders or bool(order_set),
            touches=rule_set.needs_touches or bool(touch_set),
            tags=bool(unknown),
        )
        for person_id in unknown:
            held = loaded[person_id].held or {}
            self.initial[person_id] = held
            self.held[person_id] = dict(held)
        for person_id in order_set:
            _update(self.people.get(person_id), order_aggregates(loaded[person_id].orders))
        for person_id in touch_set:
            _update(self.people.get(person_id), touch_aggregates(loaded[person_id].touches))
        if not rule_set.rules and rule_set.version == 0:
            return {}  # a tenant that never had a rule holds no tags
        changes: dict[str, TagDiff] = {}
        for person_id in sorted(causes):
            current = self.held[person_id]
            locked = self.people.get(person_id)
            if locked is not None:
                profile = bulk.profile_of(person_id, locked.row, loaded[person_id], compiled.facts)
                desired = compiled.decide(profile, now)
            else:
                profile, desired = Profile(person_id), {}
            change = diff(current, desired)
            changes[person_id] = change
            for t, d in desired.items():
                was = current.get(t)
                if was is not None and was.rule_version != d.rule_version:  # re-stamped: rule and version only
                    current[t] = Decision(t, was.family, d.rule_id, d.rule_version)
            if not change.changed:
                continue
            facts = compiled.deciding_facts([d.tag for d in (*change.added, *change.removed)], profile, now)
            for d in change.removed:
                del current[d.tag]
            for d in change.added:
                current[d.tag] = d
                self.gained[person_id, d.tag] = _Gain(now, facts)
            event_id, payload = tag_repo.tags_changed_payload(
                tenant=self.tenant, person_id=person_id, change=change, facts=facts, now=now, cause=causes[person_id]
            )
            self.events.append((event_id, person_id, payload))
        return changes

    async def finish(self) -> None:
        """Write the net tag changes and the `tags.changed` outbox rows (one statement), then the profile rows
        (one statement)."""
        removed: list[tuple[str, Decision]] = []
        added: list[tuple[str, Decision, datetime, dict[str, Any]]] = []
        restamped: list[tuple[str, Decision]] = []
        for person_id, final in self.held.items():
            before = self.initial[person_id]
            removed += [(person_id, d) for t, d in before.items() if t not in final]
            for t, d in final.items():
                gain = self.gained.get((person_id, t))
                was = before.get(t)
                if gain is not None:  # its last gain was in this batch: new, or lost and gained again
                    added.append((person_id, d, gain.at, gain.facts))
                elif was is not None and (was.rule_id, was.rule_version) != (d.rule_id, d.rule_version):
                    restamped.append((person_id, d))
        await bulk.write_changes(
            self.session,
            tenant=self.tenant,
            removed=removed,
            added=added,
            restamped=restamped,
            event_type=TagsChanged.event_type,
            topic=self.tagger.topics.name(TagsChanged.topic),
            events=self.events,
        )
        await bulk.write_profiles(self.session, tenant=self.tenant, people=self.people)


def _update(person: bulk.LockedProfile | None, values: Mapping[str, Any]) -> None:
    """Set re-derived aggregates on a locked row, marking it to be written when they changed."""
    if person is None:
        return
    row = person.row
    if any(row[k] != v for k, v in values.items()):
        row.update(values)
        person.dirty = True
