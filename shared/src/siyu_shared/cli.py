"""The command line every service exposes: ``serve``, ``migrate`` and ``keys``.

siyu-ingest migrate
siyu-ingest migrate --wait --timeout 300   # apply nothing: exit 0 once the head is applied (init containers)
siyu-ingest serve --role api --port 8001
siyu-ingest keys create --tenant glowlab --scopes read,write --name bi
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

import uvicorn
from pydantic import ValidationError

from siyu_shared.app import create_app
from siyu_shared.auth.keys import SCOPES, Scope, issue_key, revoke_key
from siyu_shared.db.engine import create_engine, session_factory, unit_of_work
from siyu_shared.db.migrate import applied, upgrade, wait_until_applied
from siyu_shared.service import ServiceSpec
from siyu_shared.settings import explain


def service_main(spec_factory: Callable[[], ServiceSpec], argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Siyu service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--role", choices=["api", "worker", "all"], default="all")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    migrate = sub.add_parser("migrate", help="apply the database migrations (alembic upgrade head)")
    only = migrate.add_mutually_exclusive_group()
    only.add_argument("--check", action="store_true", help="apply nothing; exit 1 unless the head is applied")
    only.add_argument("--wait", action="store_true", help="apply nothing; wait until the head is applied")
    migrate.add_argument("--timeout", type=float, default=300.0, help="seconds --wait waits before exit 1")
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="issue a key (printed once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--scopes", default="read", help=f"comma-separated of {','.join(SCOPES)}")
    create.add_argument("--name", default="cli")
    revoke = keys_sub.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)

    try:
        spec = spec_factory()
    except ValidationError as error:  # a missing or bad setting: say which variable, not pydantic's dump
        print(explain(error), file=sys.stderr)
        return 2
    if args.command == "serve":
        app = create_app(spec, role=args.role)
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=25,
        )
        return 0
    if args.command == "migrate":
        migrations, url, schema = spec.migrations, spec.settings.database_url, spec.schema
        if args.check or args.wait:
            if args.wait:
                ok = wait_until_applied(migrations=migrations, url=url, schema=schema, timeout_s=args.timeout)
            else:
                ok = applied(migrations=migrations, url=url, schema=schema)
            print(f"{schema}: migrations {'applied' if ok else 'NOT applied (run: migrate)'}")
            return 0 if ok else 1
        upgrade(migrations=migrations, url=url, schema=schema)
        return 0
    if args.keys_command == "create":
        scopes = tuple(s.strip() for s in args.scopes.split(",") if s.strip())
        print(asyncio.run(_create_key(spec, args.tenant, scopes, args.name)))
        return 0
    return 0 if asyncio.run(_revoke_key(spec, args.key_id)) else 1


async def _create_key(spec: ServiceSpec, tenant: str, scopes: tuple[Scope, ...], name: str) -> str:
    engine = create_engine(spec.settings.database_url, schema=spec.schema, pool_size=1)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            issued = await issue_key(session, tenant=tenant, scopes=scopes, name=name)
    finally:
        await engine.dispose()
    return issued.plaintext


async def _revoke_key(spec: ServiceSpec, key_id: str) -> bool:
    engine = create_engine(spec.settings.database_url, schema=spec.schema, pool_size=1)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            return await revoke_key(session, key_id=key_id)
    finally:
        await engine.dispose()
