"""Who owns which identifier, as the current transaction sees it: one query for a whole batch of deliveries.

Valid only inside the savepoint it was filled in (the worker's fast path); a rolled-back savepoint discards it.
Persons born in the batch get birth times from the database clock plus one microsecond each, so the cached
creation order (the merge survivor rule) is exactly what the rows say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from siyu_ingest.adapters import identity
from siyu_ingest.domain.identity import KnownPerson, Resolution
from siyu_ingest.domain.models import Identifier

Key = tuple[str, str, str]  # tenant, kind, match key


@dataclass
class OwnerCache:
    clock: datetime
    owners: dict[Key, KnownPerson | None] = field(default_factory=dict)
    born: int = 0

    @classmethod
    async def start(cls, session: AsyncSession) -> OwnerCache:
        return cls(clock=await identity.database_now(session))

    def birth_time(self) -> datetime:
        self.born += 1
        return self.clock + timedelta(microseconds=self.born)

    async def prefetch(self, session: AsyncSession, *, tenant: str, keys: Mapping[Identifier, str]) -> None:
        missing = {i: k for i, k in keys.items() if (tenant, i.kind, k) not in self.owners}
        if not missing:
            return
        found = await identity.owners(session, tenant=tenant, keys=missing)
        for i, key in missing.items():
            self.owners[(tenant, i.kind, key)] = found.get(i)

    async def lookup(
        self, session: AsyncSession, *, tenant: str, keys: Mapping[Identifier, str]
    ) -> dict[Identifier, KnownPerson]:
        await self.prefetch(session, tenant=tenant, keys=keys)
        out: dict[Identifier, KnownPerson] = {}
        for i, key in keys.items():
            owner = self.owners[(tenant, i.kind, key)]
            if owner is not None:
                out[i] = owner
        return out

    def apply(self, *, tenant: str, decision: Resolution, keys: Mapping[Identifier, str], person: KnownPerson) -> None:
        merged = set(decision.merged_ids)
        if merged:
            for cache_key, owner in self.owners.items():
                if cache_key[0] == tenant and owner is not None and owner.person_id in merged:
                    self.owners[cache_key] = person
        for i in decision.attach:
            self.owners[(tenant, i.kind, keys[i])] = person


def identifiers_of(facts: Iterable[object]) -> list[Identifier]:
    return [i for fact in facts for i in getattr(fact, "identifiers", ())]
