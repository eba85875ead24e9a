"""Database, roles and schemas of the four services, created idempotently.

Each service logs in as its own role (``role_of``) and owns exactly one schema (``schema_of``) which is also its
``search_path``; it can reach nothing else: ``PUBLIC`` loses every privilege on the database (so no ``TEMP`` and no
implicit ``CONNECT``) and on schema ``public``, each role gets back only ``CONNECT``, and no role has ``USAGE`` on
another's schema. This mirrors production, where services share a cluster but not data, and makes a service that
quietly reads another's tables fail in local tests rather than in review.

Passwords are derived from a secret (HMAC per role), so re-provisioning does not change them and DSNs handed out
earlier stay valid; without a secret they are random and change on every run. The same code provisions the embedded
server of a local stack and an existing server given by ``DATABASE_URL``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from siyu_shared.services import SERVICES, role_of, schema_of

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "siyu"
_LOCK_KEY = 0x5159_5544  # advisory lock serialising concurrent provisioning of one server


def libpq_dsn(dsn: str) -> str:
    """``dsn`` with any SQLAlchemy driver suffix removed (``postgresql+asyncpg://`` -> ``postgresql://``)."""
    parts = urlsplit(dsn)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {dsn!r}")
    return urlunsplit(parts._replace(scheme="postgresql"))


def database_dsn(admin_dsn: str, database: str = DEFAULT_DATABASE) -> str:
    """The admin DSN pointed at ``database`` (libpq/asyncpg form): for migrations, fixtures and inspection."""
    return urlunsplit(urlsplit(libpq_dsn(admin_dsn))._replace(path="/" + quote(database)))


def service_dsn(admin_dsn: str, role: str, password: str, database: str = DEFAULT_DATABASE) -> str:
    """SQLAlchemy URL (``postgresql+asyncpg://role:pw@host:port/database``) on the admin DSN's server."""
    parts = urlsplit(libpq_dsn(admin_dsn))
    hostport = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{hostport}"
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg", netloc=netloc, path="/" + quote(database)))


def password_for(role: str, secret: str | None) -> str:
    """The password of ``role``: stable for a given secret, random without one."""
    if secret is None:
        return secrets.token_hex(16)
    return hmac.new(secret.encode(), f"siyu-role:{role}".encode(), hashlib.sha256).hexdigest()[:32]


async def _execute(conn: asyncpg.Connection, template: str, *args: str) -> None:
    """Run DDL built with the server's ``format()`` so identifiers (%I) and literals (%L) are quoted by Postgres."""
    placeholders = "".join(f", ${i}::text" for i in range(2, len(args) + 2))
    statement = await conn.fetchval(f"SELECT format($1::text{placeholders})", template, *args)
    await conn.execute(statement)


async def provision(
    admin_dsn: str,
    database: str = DEFAULT_DATABASE,
    *,
    secret: str | None = None,
    services: Iterable[str] = SERVICES,
) -> dict[str, str]:
    """Create ``database``, one role and one owned schema per service; return ``{service: SQLAlchemy DSN}``.

    Safe to run again (and concurrently against one server): existing objects are brought to the same state.
    """
    services = tuple(services)
    roles = {s: role_of(s) for s in services}
    passwords = {s: password_for(roles[s], secret) for s in services}
    admin = await asyncpg.connect(libpq_dsn(admin_dsn))
    try:
        await admin.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
                try:
                    await _execute(admin, "CREATE DATABASE %I", database)
                    log.info("created database %s", database)
                except asyncpg.DuplicateDatabaseError:
                    pass
            for service in services:
                role, password = roles[service], passwords[service]
                options = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L"
                if await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                    await _execute(admin, f"ALTER ROLE %I WITH {options}", role, password)
                else:
                    await _execute(admin, f"CREATE ROLE %I WITH {options}", role, password)
                    log.info("created role %s", role)
                await _execute(admin, "ALTER ROLE %I SET search_path = %I", role, schema_of(service))
            await _execute(admin, "REVOKE ALL ON DATABASE %I FROM PUBLIC", database)
            for role in roles.values():
                await _execute(admin, "GRANT CONNECT ON DATABASE %I TO %I", database, role)
            await _provision_schemas(database_dsn(admin_dsn, database), roles)
        finally:
            await admin.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await admin.close()
    return {s: service_dsn(admin_dsn, roles[s], passwords[s], database) for s in services}


async def _provision_schemas(db_admin_dsn: str, roles: dict[str, str]) -> None:
    conn = await asyncpg.connect(db_admin_dsn)
    try:
        async with conn.transaction():
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            for service, role in roles.items():
                schema = schema_of(service)
                await _execute(conn, "CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I", schema, role)
                await _execute(conn, "ALTER SCHEMA %I OWNER TO %I", schema, role)
                await _execute(conn, "REVOKE ALL ON SCHEMA %I FROM PUBLIC", schema)
    finally:
        await conn.close()
