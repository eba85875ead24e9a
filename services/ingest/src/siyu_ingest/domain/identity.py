"""Identity resolution: which person a set of identifiers belongs to, and which persons must merge.

Pure: the repository loads who owns each identifier (already resolved to the surviving person) and applies the
decision. The survivor of a merge is deterministic (the oldest person, ties broken by id), so any replay of the
same deliveries yields the same person ids and the same single merge event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from siyu_ingest.domain.errors import Malformed
from siyu_ingest.domain.models import Identifier, IdentifierKind
from siyu_ingest.domain.normalise import normalise_phone


@dataclass(frozen=True, slots=True)
class KnownPerson:
    person_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Resolution:
    person_id: str
    create: bool
    """A new person is born with this observation."""
    attach: tuple[Identifier, ...]
    """Identifiers not yet owned by anyone: they become the person's."""
    merged_ids: tuple[str, ...] = ()
    """Persons folded into ``person_id`` (oldest first)."""
    reason: str | None = None


def resolve(
    *,
    observed: Sequence[Identifier],
    owners: Mapping[Identifier, KnownPerson],
    new_person_id: str,
) -> Resolution:
    """Decide the person behind ``observed`` given the current owner of each identifier."""
    unique = tuple(dict.fromkeys(observed))
    attach = tuple(i for i in unique if i not in owners)
    persons = {p.person_id: p for p in owners.values()}
    if not persons:
        return Resolution(person_id=new_person_id, create=True, attach=attach)
    ranked = sorted(persons.values(), key=lambda p: (p.created_at, p.person_id))
    survivor = ranked[0]
    merged = tuple(p.person_id for p in ranked[1:])
    reason = None
    if merged:
        reason = next(i.kind for i in unique if i in owners and owners[i].person_id == survivor.person_id)
    return Resolution(person_id=survivor.person_id, create=False, attach=attach, merged_ids=merged, reason=reason)


def lookup_identifier(kind: IdentifierKind, value: str) -> Identifier:
    """The identifier a lookup names, normalised the way the channels normalise it (Chinese mobiles to E.164);
    Malformed when it could never match anything (a masked or invalid phone, an empty value)."""
    if kind == "phone":
        phone = normalise_phone(value)
        if phone is None or phone.e164 is None:
            raise Malformed(
                "not a complete Chinese mobile number (masked numbers, landlines and numbers outside China are "
                "never matched)"
            )
        return Identifier("phone", phone.e164)
    text = value.strip()
    if not text:
        raise Malformed("empty identifier value")
    return Identifier(kind, text)
