"""``siyu-keys``: one API key valid on every service, issued, listed or revoked from the command line.

Each service keeps its own ``api_keys`` table in its own schema (a service reads nothing of another's), so a key
that should work everywhere is stored, hashed, in each of them. ``siyu-<service> keys`` manages one service's
keys with that service's own settings; this command manages all of them at once:

    siyu-keys create --tenant glowlab --scopes admin --name ops    # prints the key once
    siyu-keys list --tenant glowlab
    siyu-keys revoke 3f9a1c2e7b4d6a05

It connects with ``--database-url`` or ``DATABASE_URL`` (a URL whose role can write every service's schema, such
as the database owner), or per service with ``<SERVICE>_DATABASE_URL`` (``INGEST_DATABASE_URL`` …), which wins
for that service. ``--services`` narrows it to some services.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping

from sqlalchemy import select

from siyu_shared.auth.keys import SCOPES, Scope, new_key, revoke_key, store_key
from siyu_shared.db.engine import create_engine, session_factory, unit_of_work
from siyu_shared.messaging.tables import api_keys_table
from siyu_shared.services import SERVICES, env_prefix_of
from siyu_shared.values import TENANT_PATTERN, is_tenant


class UsageError(Exception):
    """Something the operator must change in the command or the environment."""


def database_urls(services: list[str], *, url: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The URL to reach each service's schema with: its own ``<SERVICE>_DATABASE_URL``, else the common one."""
    common = url or environ.get("DATABASE_URL")
    urls: dict[str, str] = {}
    for service in services:
        chosen = environ.get(f"{env_prefix_of(service)}DATABASE_URL") or common
        if not chosen:
            raise UsageError(
                f"no database for {service}: pass --database-url, or set DATABASE_URL or "
                f"{env_prefix_of(service)}DATABASE_URL"
            )
        urls[service] = chosen
    return urls


def _services(value: str) -> list[str]:
    chosen = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SERVICES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"services must be some of {','.join(SERVICES)}")
    return chosen


def _scopes(value: str) -> tuple[Scope, ...]:
    chosen = tuple(s.strip() for s in value.split(",") if s.strip())
    if not chosen or any(s not in SCOPES for s in chosen):
        raise argparse.ArgumentTypeError(f"scopes must be some of {','.join(SCOPES)}")
    return chosen  # type: ignore[return-value]  # checked against SCOPES just above


def _tenant(value: str) -> str:
    if not is_tenant(value):
        raise argparse.ArgumentTypeError(f"a tenant id must match {TENANT_PATTERN}")
    return value


async def create(urls: dict[str, str], *, tenant: str, scopes: tuple[Scope, ...], name: str) -> str:
    """Store one new key in every service's schema; the plaintext, shown once."""
    issued, secret_hash = new_key(tenant=tenant, scopes=scopes)
    for service, url in urls.items():
        engine = create_engine(url, schema=service, pool_size=1, application_name="siyu-keys")
        try:
            async with unit_of_work(session_factory(engine)) as session:
                await store_key(session, issued=issued, secret_hash=secret_hash, name=name)
        finally:
            await engine.dispose()
    return issued.plaintext


async def revoke(urls: dict[str, str], *, key_id: str) -> list[str]:
    """Revoke the key everywhere it is active; the services it was revoked in."""
    revoked: list[str] = []
    for service, url in urls.items():
        engine = create_engine(url, schema=service, pool_size=1, application_name="siyu-keys")
        try:
            async with unit_of_work(session_factory(engine)) as session:
                if await revoke_key(session, key_id=key_id):
                    revoked.append(service)
        finally:
            await engine.dispose()
    return revoked


async def listing(urls: dict[str, str], *, tenant: str) -> list[str]:
    """One line per key of the tenant: id, name, scopes, state, and the services that hold it."""
    held: dict[tuple[str, str, str, str], list[str]] = {}
    for service, url in urls.items():
        engine = create_engine(url, schema=service, pool_size=1, application_name="siyu-keys")
        try:
            async with unit_of_work(session_factory(engine)) as session:
                rows = await session.execute(
                    select(api_keys_table)
                    .where(api_keys_table.c.tenant == tenant)
                    .order_by(api_keys_table.c.created_at)
                )
                for row in rows.mappings():
                    state = "revoked" if row["revoked_at"] else "active"
                    held.setdefault((row["key_id"], row["name"], ",".join(row["scopes"]), state), []).append(service)
        finally:
            await engine.dispose()
    return [f"{k} {state:<7} {scopes:<16} {','.join(s)} {name}" for (k, name, scopes, state), s in held.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="siyu-keys", description="API keys valid on every service")
    parser.add_argument("--database-url", help="a URL that can write every service's schema (default $DATABASE_URL)")
    parser.add_argument("--services", type=_services, default=list(SERVICES), help="comma-separated (default all)")
    sub = parser.add_subparsers(dest="command", required=True)
    made = sub.add_parser("create", help="issue a key (printed once)")
    made.add_argument("--tenant", required=True, type=_tenant)
    made.add_argument("--scopes", type=_scopes, default=("read",), help=f"comma-separated of {','.join(SCOPES)}")
    made.add_argument("--name", default="siyu-keys")
    gone = sub.add_parser("revoke", help="revoke a key on every service")
    gone.add_argument("key_id")
    shown = sub.add_parser("list", help="the tenant's keys (never their secrets)")
    shown.add_argument("--tenant", required=True, type=_tenant)
    args = parser.parse_args(argv)
    try:
        urls = database_urls(args.services, url=args.database_url, environ=os.environ)
    except UsageError as error:
        parser.exit(2, f"siyu-keys: {error}\n")
    if args.command == "create":
        print(asyncio.run(create(urls, tenant=args.tenant, scopes=args.scopes, name=args.name)))
    elif args.command == "revoke":
        revoked = asyncio.run(revoke(urls, key_id=args.key_id))
        if not revoked:
            parser.exit(1, f"siyu-keys: no active key {args.key_id} in {','.join(urls)}\n")
        print(f"revoked {args.key_id} in {','.join(revoked)}")
    else:
        print("\n".join(asyncio.run(listing(urls, tenant=args.tenant))))
    sys.exit(0)
