"""The databases the manifests bootstrap, run for real: the CloudNativePG Cluster's initdb SQL followed by its managed
roles, and compose's init script, each on a fresh PostgreSQL of its own (roles are global to a server)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from siyu_devstack.postgres import EmbeddedPostgres
from siyu_devstack.stack import state_root
from siyu_shared.services import SERVICES, role_of

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
import render  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture
async def server() -> AsyncIterator[EmbeddedPostgres]:
    directory = state_root() / "test-bootstrap" / f"{os.getpid()}-{time.monotonic_ns()}"
    pg = EmbeddedPostgres(directory / "data", fast=True, log_file=directory / "postgres.log")
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def _dsn(pg: EmbeddedPostgres, database: str, user: str = "postgres", password: str | None = None) -> str:
    auth = user if password is None else f"{user}:{password}"
    return f"postgresql://{auth}@127.0.0.1:{pg.port}/{database}"


async def _execute_all(dsn: str, statements: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _each_role_reaches_only_its_own_schema(pg: EmbeddedPostgres, passwords: dict[str, str]) -> None:
    for service in SERVICES:
        conn = await asyncpg.connect(_dsn(pg, "siyu", role_of(service), passwords[service]))
        try:
            assert await conn.fetchval("SELECT current_schema()") == service
            await conn.execute("CREATE TABLE probe (id int)")  # lands in its own schema, through its search_path
            assert await conn.fetchval("SELECT to_regclass(format('%I.probe', $1::text)) IS NOT NULL", service)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE public.probe (id int)")
            other = next(s for s in SERVICES if s != service)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f'CREATE TABLE "{other}".probe_{service} (id int)')
        finally:
            await conn.close()


async def test_the_cloudnativepg_cluster_bootstraps_and_its_managed_roles_apply(server: EmbeddedPostgres) -> None:
    """What the operator does, in its order: initdb creates the owner and the database, runs
    ``postInitApplicationSQL`` in it as the superuser, and only once the instance is up reconciles
    ``spec.managed.roles`` (creating a missing role, or adopting an existing one: login, password, limit)."""
    (cluster,) = [d for d in yaml.safe_load_all(render.postgres_cluster()) if d]
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    await _execute_all(
        _dsn(server, "postgres"),
        [f"CREATE ROLE {initdb['owner']} LOGIN", f"CREATE DATABASE {initdb['database']} OWNER {initdb['owner']}"],
    )
    await _execute_all(_dsn(server, initdb["database"]), initdb["postInitApplicationSQL"])

    passwords = {s: f"managed-{s}" for s in SERVICES}
    conn = await asyncpg.connect(_dsn(server, "postgres"))
    try:
        for role in cluster["spec"]["managed"]["roles"]:
            service = next(s for s in SERVICES if role_of(s) == role["name"])
            exists = await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role["name"])
            verb = "ALTER" if exists else "CREATE"
            login = "LOGIN" if role.get("login") else "NOLOGIN"
            await conn.execute(
                f"{verb} ROLE {role['name']} {login} CONNECTION LIMIT {role['connectionLimit']}"
                f" PASSWORD '{passwords[service]}'"
            )
    finally:
        await conn.close()
    await _each_role_reaches_only_its_own_schema(server, passwords)


async def test_compose_init_script_provisions_every_role_and_schema(server: EmbeddedPostgres) -> None:
    """The official image runs ``/docker-entrypoint-initdb.d`` as ``POSTGRES_USER`` in ``POSTGRES_DB``."""
    compose: dict[str, Any] = yaml.safe_load(render.compose())
    await _execute_all(
        _dsn(server, "postgres"), [f"CREATE DATABASE {compose['services']['postgres']['environment']['POSTGRES_DB']}"]
    )
    conn = await asyncpg.connect(_dsn(server, "siyu"))
    try:
        await conn.execute(render.compose_postgres_init())
    finally:
        await conn.close()
    await _each_role_reaches_only_its_own_schema(server, {s: f"dev-only-{s}" for s in SERVICES})
