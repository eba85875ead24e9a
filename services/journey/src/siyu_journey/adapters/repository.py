"""SQL of journeys (versions, status), the journey's view of people, guardrail policies and step counts.
Every query is filtered by tenant."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from siyu_journey.adapters.tables import enrolments, journeys, people, policies, touches
from siyu_journey.domain.definition import JourneyDefinition
from siyu_journey.domain.guardrails import GuardrailPolicy
from siyu_journey.domain.machine import PersonView
from siyu_journey.domain.people import Friendship

# ---- journeys ---------------------------------------------------------------------------------------------

_definitions: dict[tuple[str, str, int], JourneyDefinition] = {}


async def definition(session: AsyncSession, *, tenant: str, journey_id: str, version: int) -> JourneyDefinition:
    """A version's definition; versions that ran are immutable, so they are cached per process."""
    key = (tenant, journey_id, version)
    cached = _definitions.get(key)
    if cached is None:
        raw = await session.scalar(
            select(journeys.c.definition).where(
                journeys.c.tenant == tenant, journeys.c.journey_id == journey_id, journeys.c.version == version
            )
        )
        if raw is None:
            raise LookupError(f"journey {journey_id} v{version} not found")
        cached = _definitions[key] = JourneyDefinition.model_validate(raw)
    return cached


_LIVE_TTL_S = 1.0
_live: dict[str, tuple[float, list[tuple[str, int]]]] = {}


async def live_journeys(session: AsyncSession, *, tenant: str) -> list[tuple[int, JourneyDefinition]]:
    """The tenant's published versions. Looked up at most once a second per process (this is on the path of
    every consumed event); a publish or pause therefore takes effect within a second."""
    now = time.monotonic()
    cached = _live.get(tenant)
    if cached is None or now - cached[0] > _LIVE_TTL_S:
        rows = await session.execute(
            select(journeys.c.journey_id, journeys.c.version).where(
                journeys.c.tenant == tenant, journeys.c.status == "published"
            )
        )
        cached = _live[tenant] = (now, [(r.journey_id, r.version) for r in rows])
    return [
        (version, await definition(session, tenant=tenant, journey_id=journey_id, version=version))
        for journey_id, version in cached[1]
    ]


def forget_live(tenant: str) -> None:
    """After a status change in this process: the next event sees it at once."""
    _live.pop(tenant, None)


async def journey_versions(session: AsyncSession, *, tenant: str, journey_id: str) -> list[Row[Any]]:
    result = await session.execute(
        select(journeys)
        .where(journeys.c.tenant == tenant, journeys.c.journey_id == journey_id)
        .order_by(journeys.c.version)
    )
    return list(result.all())


async def list_journeys(session: AsyncSession, *, tenant: str) -> list[Row[Any]]:
    latest = (
        select(journeys.c.journey_id, func.max(journeys.c.version).label("version"))
        .where(journeys.c.tenant == tenant)
        .group_by(journeys.c.journey_id)
        .subquery()
    )
    result = await session.execute(
        select(journeys)
        .join(latest, and_(journeys.c.journey_id == latest.c.journey_id, journeys.c.version == latest.c.version))
        .where(journeys.c.tenant == tenant)
        .order_by(journeys.c.journey_id)
    )
    return list(result.all())


async def add_version(session: AsyncSession, *, tenant: str, definition: JourneyDefinition, now: datetime) -> int:
    """A new draft version (or replaces the latest version while it is still a draft)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{tenant}/{definition.id}"})
    latest = (await journey_versions(session, tenant=tenant, journey_id=definition.id))[-1:]
    body = definition.model_dump(mode="json")
    if latest and latest[0].status == "draft":
        version = int(latest[0].version)
        await session.execute(
            update(journeys)
            .where(journeys.c.tenant == tenant, journeys.c.journey_id == definition.id, journeys.c.version == version)
            .values(definition=body, updated_at=now)
        )
        return version
    version = int(latest[0].version) + 1 if latest else 1
    await session.execute(
        journeys.insert().values(
            tenant=tenant,
            journey_id=definition.id,
            version=version,
            status="draft",
            definition=body,
            created_at=now,
            updated_at=now,
        )
    )
    return version


async def set_status(
    session: AsyncSession, *, tenant: str, journey_id: str, version: int, status: str, now: datetime
) -> None:
    forget_live(tenant)
    if status == "published":
        # People finish the version they started: older live versions take no new entries.
        await session.execute(
            update(journeys)
            .where(
                journeys.c.tenant == tenant,
                journeys.c.journey_id == journey_id,
                journeys.c.version != version,
                journeys.c.status.in_(("published", "paused")),
            )
            .values(status="superseded", updated_at=now)
        )
    await session.execute(
        update(journeys)
        .where(journeys.c.tenant == tenant, journeys.c.journey_id == journey_id, journeys.c.version == version)
        .values(status=status, updated_at=now)
    )


# ---- people -----------------------------------------------------------------------------------------------


async def person_row(session: AsyncSession, *, tenant: str, person_id: str) -> Row[Any] | None:
    result = await session.execute(
        select(people).where(people.c.tenant == tenant, people.c.person_id == person_id).with_for_update()
    )
    return result.first()


async def ensure_person(
    session: AsyncSession, *, tenant: str, person_id: str, now: datetime, **values: Any
) -> Row[Any]:
    """The person's row (created if new), locked, after applying ``values`` — one round trip.

    ``values`` are written as given: the WeCom friendship (owner, ``external_userid``) changes by the rules of
    ``domain/people.py``, through ``ensure_people`` and ``set_friendships``, not here.
    """
    stmt = pg_insert(people).values(tenant=tenant, person_id=person_id, updated_at=now, **values)
    changes: dict[str, Any] = {"updated_at": now} | {name: stmt.excluded[name] for name in values}
    row = (
        await session.execute(
            stmt.on_conflict_do_update(index_elements=["tenant", "person_id"], set_=changes).returning(*people.c)
        )
    ).first()
    assert row is not None
    return row


_PEOPLE_TEXT_COLUMNS = frozenset({"owner_staff_id", "external_userid"})
"""What ``ensure_people`` may give a new row besides the key (text columns, as the handlers give them)."""


@lru_cache(maxsize=16)
def _ensure_people_statement(names: tuple[str, ...]) -> Any:
    """One constant statement per set of columns: the rows arrive as arrays (no statement per batch size)."""
    columns = ("tenant", "person_id", *names)
    return text(
        f"INSERT INTO people ({', '.join(columns)}, updated_at) "
        f"SELECT *, CAST(:now AS timestamptz) FROM unnest({', '.join(f'CAST(:{c} AS text[])' for c in columns)}) "
        "ON CONFLICT (tenant, person_id) DO UPDATE SET updated_at = excluded.updated_at "
        "RETURNING *"
    )


async def ensure_people(
    session: AsyncSession, *, rows: Iterable[dict[str, Any]], now: datetime
) -> dict[tuple[str, str], Row[Any]]:
    """People's rows, created if new, locked (in key order) and returned by key, in one statement: rows of
    tenant, person_id and the same optional values (owner_staff_id, external_userid), each (tenant, person) at most
    once. The values are only those a new row starts with: an existing row keeps its own (the caller decides what
    changes and writes it, e.g. with ``set_friendships``)."""
    batch = sorted(rows, key=lambda r: (r["tenant"], r["person_id"]))
    if not batch:
        return {}
    names = tuple(sorted(set(batch[0]) - {"tenant", "person_id"}))
    unknown = set(names) - _PEOPLE_TEXT_COLUMNS
    if unknown:
        raise ValueError(f"ensure_people sets only {sorted(_PEOPLE_TEXT_COLUMNS)}, not {sorted(unknown)}")
    params: dict[str, Any] = {c: [r[c] for r in batch] for c in ("tenant", "person_id", *names)}
    result = await session.execute(_ensure_people_statement(names), {**params, "now": now})
    return {(r.tenant, r.person_id): r for r in result}


_SET_FRIENDSHIPS = text(
    """
    UPDATE people p SET owner_staff_id = k.owner, external_userid = k.contact, updated_at = CAST(:now AS timestamptz)
    FROM unnest(CAST(:ts AS text[]), CAST(:ps AS text[]), CAST(:os AS text[]), CAST(:cs AS text[]))
        AS k(tenant, person, owner, contact)
    WHERE p.tenant = k.tenant AND p.person_id = k.person
    RETURNING p.*
    """
)


async def set_friendships(
    session: AsyncSession, *, changes: Iterable[tuple[str, str, Friendship | None]], now: datetime
) -> dict[tuple[str, str], Row[Any]]:
    """Writes each person's WeCom friendship, as (tenant, person, friendship or none), both columns together;
    returns the updated rows by key. The caller decides the pairs (``domain/people.py``) on rows it holds locked."""
    rows = sorted({(t, p): f for t, p, f in changes}.items())
    if not rows:
        return {}
    result = await session.execute(
        _SET_FRIENDSHIPS,
        {
            "ts": [t for (t, _), _ in rows],
            "ps": [p for (_, p), _ in rows],
            "os": [f.owner_staff_id if f else None for _, f in rows],
            "cs": [f.external_userid if f else None for _, f in rows],
            "now": now,
        },
    )
    return {(r.tenant, r.person_id): r for r in result}


async def update_person(session: AsyncSession, *, tenant: str, person_id: str, **values: Any) -> None:
    await session.execute(
        update(people).where(people.c.tenant == tenant, people.c.person_id == person_id).values(**values)
    )


PEOPLE_ROWS = text(
    """
    SELECT p.* FROM unnest(CAST(:ts AS text[]), CAST(:ps AS text[])) AS k(tenant, person)
    CROSS JOIN LATERAL (
        SELECT * FROM people p WHERE p.tenant = k.tenant AND p.person_id = k.person
        OFFSET 0  -- one primary key probe per key, whatever the statistics say (see progress.py)
    ) AS p
    """
)


async def people_rows(session: AsyncSession, *, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Row[Any]]:
    """People by (tenant, person), one constant statement over arrays (those not known are left out)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    result = await session.execute(PEOPLE_ROWS, {"ts": [t for t, _ in wanted], "ps": [p for _, p in wanted]})
    return {(r.tenant, r.person_id): r for r in result}


async def delete_person(session: AsyncSession, *, tenant: str, person_id: str) -> None:
    await session.execute(delete(people).where(people.c.tenant == tenant, people.c.person_id == person_id))


def person_view(person_id: str, row: Row[Any] | None) -> PersonView:
    if row is None:
        return PersonView(person_id)
    return PersonView(person_id, frozenset(row.tags), dict(row.facts), row.last_paid_at)


async def step_counts(session: AsyncSession, *, tenant: str, journey_id: str) -> dict[str, dict[str, int]]:
    """Per step: entered (visits), waiting (timers parked there), sent/skipped/failed/pending touches."""
    counts: dict[str, dict[str, int]] = {}

    def bump(step: str, what: str, n: int) -> None:
        counts.setdefault(step, {}).setdefault(what, 0)
        counts[step][what] += n

    visits = await session.execute(
        text(
            "SELECT v.key AS step, sum(v.value::int) AS n FROM enrolments e, jsonb_each_text(e.visits) v "
            "WHERE e.tenant = :t AND e.journey_id = :j GROUP BY v.key"
        ),
        {"t": tenant, "j": journey_id},
    )
    for r in visits:
        bump(r.step, "entered", int(r.n))
    waiting = await session.execute(
        select(enrolments.c.step_id, func.count())
        .where(enrolments.c.tenant == tenant, enrolments.c.journey_id == journey_id, enrolments.c.status == "active")
        .group_by(enrolments.c.step_id)
    )
    for step, n in waiting:
        if step is not None:
            bump(step, "waiting", int(n))
    sent = await session.execute(
        select(touches.c.step_id, touches.c.status, func.count())
        .where(touches.c.tenant == tenant, touches.c.journey_id == journey_id)
        .group_by(touches.c.step_id, touches.c.status)
    )
    for step, status, n in sent:
        bump(step, status, int(n))
    return counts


async def converted(session: AsyncSession, *, tenant: str, journey_id: str) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                enrolments.c.tenant == tenant,
                enrolments.c.journey_id == journey_id,
                enrolments.c.exit_reason == "order.paid",
            )
        )
        or 0
    )


# ---- policies ---------------------------------------------------------------------------------------------


async def policy(session: AsyncSession, *, tenant: str) -> GuardrailPolicy:
    return parse_policy(await session.scalar(select(policies.c.policy).where(policies.c.tenant == tenant)))


def parse_policy(raw: Any) -> GuardrailPolicy:
    """A stored policy (JSON), or the defaults when the tenant has none."""
    return GuardrailPolicy() if raw is None else GuardrailPolicy.model_validate(raw)


async def put_policy(session: AsyncSession, *, tenant: str, value: GuardrailPolicy, now: datetime) -> None:
    stmt = pg_insert(policies).values(tenant=tenant, policy=value.model_dump(mode="json"), updated_at=now)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=["tenant"], set_={"policy": stmt.excluded.policy, "updated_at": now})
    )
