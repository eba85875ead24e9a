"""New persons, identifier attachments and leads: the one place that writes them.

One delivery at a time, each call writes at once. The worker's batch path holds them back and writes a whole
batch in two statements over arrays: the same rows, in the same order, with the same ``ON CONFLICT DO NOTHING``
(the first row of a key wins, as it would one statement at a time). Anything that reads or rewrites these tables
in SQL (a merge) must ``flush`` first; nothing else in the worker reads them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_ingest.domain.models import Identifier, Lead

_PERSONS_AND_IDENTIFIERS = text(
    """
    WITH born AS (
        INSERT INTO persons (tenant, person_id, created_at)
        SELECT * FROM unnest(CAST(:p_tenants AS text[]), CAST(:p_ids AS text[]), CAST(:p_born AS timestamptz[]))
        ON CONFLICT DO NOTHING
    )
    INSERT INTO identifiers (tenant, kind, value_key, person_id, value_enc)
    SELECT * FROM unnest(
        CAST(:i_tenants AS text[]), CAST(:i_kinds AS text[]), CAST(:i_keys AS text[]),
        CAST(:i_persons AS text[]), CAST(:i_sealed AS bytea[])
    )
    ON CONFLICT DO NOTHING
    """
)
_LEADS = text(
    """
    INSERT INTO leads (
        tenant, lead_id, person_id, channel, kind, occurred_at, source, attributes, name_enc, partial_phone_enc,
        delivery_id
    )
    SELECT * FROM unnest(
        CAST(:tenants AS text[]), CAST(:lead_ids AS text[]), CAST(:persons AS text[]), CAST(:channels AS text[]),
        CAST(:kinds AS text[]), CAST(:occurred AS timestamptz[]), CAST(:sources AS jsonb[]),
        CAST(:attributes AS jsonb[]), CAST(:names AS bytea[]), CAST(:partials AS bytea[]),
        CAST(:deliveries AS bigint[])
    )
    ON CONFLICT (tenant, lead_id) DO NOTHING
    """
)


Entries = Sequence[tuple[Identifier, str, bytes | None]]


@dataclass
class RowWrites:
    """Persons, identifiers and leads, written set-wise: held until ``flush`` (``hold``) or written at once.

    Held rows are invisible to SQL until flushed, so whoever holds them must know owners without asking the
    database (the batch path's ``OwnerCache``), and must flush before SQL that reads or rewrites them (a merge).
    """

    session: AsyncSession
    hold: bool = True
    persons: list[tuple[str, str, datetime]] = field(default_factory=list)
    identifiers: list[tuple[str, str, str, str, bytes | None]] = field(default_factory=list)
    leads: list[tuple[str, str, str, str, str, datetime, str, str, bytes | None, bytes | None, int | None]] = field(
        default_factory=list
    )

    async def settle(
        self, *, tenant: str, person_id: str, create: bool, created_at: datetime | None, entries: Entries
    ) -> None:
        """The person when new (born at ``created_at``) and its newly attached identifiers."""
        if create:
            assert created_at is not None
            self.persons.append((tenant, person_id, created_at))
        for identifier, key, sealed in entries:
            self.identifiers.append((tenant, identifier.kind, key, person_id, sealed))
        if not self.hold:
            await self.flush()

    async def lead(
        self,
        *,
        tenant: str,
        lead: Lead,
        person_id: str,
        delivery_id: int | None,
        name_enc: bytes | None,
        partial_phone_enc: bytes | None,
    ) -> None:
        self.leads.append(
            (
                tenant,
                lead.lead_id,
                person_id,
                lead.source.channel,
                lead.kind,
                lead.occurred_at,
                orjson.dumps(lead.source.model_dump(mode="json", exclude_none=True)).decode(),
                orjson.dumps(lead.attributes).decode(),
                name_enc,
                partial_phone_enc,
                delivery_id,
            )
        )
        if not self.hold:
            await self.flush()

    async def flush(self) -> None:
        """Write what is held (before SQL that reads or rewrites these rows, and before the commit)."""
        session = self.session
        if self.persons or self.identifiers:
            p_tenants, p_ids, p_born = _columns(self.persons, 3)
            i_tenants, i_kinds, i_keys, i_persons, i_sealed = _columns(self.identifiers, 5)
            await session.execute(
                _PERSONS_AND_IDENTIFIERS,
                {
                    "p_tenants": p_tenants,
                    "p_ids": p_ids,
                    "p_born": p_born,
                    "i_tenants": i_tenants,
                    "i_kinds": i_kinds,
                    "i_keys": i_keys,
                    "i_persons": i_persons,
                    "i_sealed": i_sealed,
                },
            )
            self.persons, self.identifiers = [], []
        if self.leads:
            names = [
                *("tenants", "lead_ids", "persons", "channels", "kinds", "occurred", "sources", "attributes"),
                *("names", "partials", "deliveries"),
            ]
            await session.execute(_LEADS, dict(zip(names, _columns(self.leads, len(names)), strict=True)))
            self.leads = []


def _columns(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
