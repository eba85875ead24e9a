"""``siyu-<service> migrate --check`` / ``--wait``: what the api and worker pods' init containers run, so that no
pod starts on a schema its code is ahead of."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from pathlib import Path

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from siyu_devstack.stack import Stack
from siyu_ingest.bootstrap import build_spec
from siyu_shared.db.migrate import alembic_config, applied, upgrade, wait_until_applied

pytestmark = pytest.mark.integration


def test_check_and_wait_see_the_head_only_once_it_is_applied(stack: Stack) -> None:
    migrations = build_spec(database_url=stack.admin_dsn, kafka_bootstrap_servers="unused:9092").migrations
    schema = f"wait_probe_{secrets.token_hex(3)}"
    where = {"migrations": migrations, "url": stack.admin_dsn, "schema": schema}
    try:
        assert not applied(**where)  # no schema, no version table
        started = time.monotonic()
        assert not wait_until_applied(**where, timeout_s=0.5, interval_s=0.1)
        assert time.monotonic() - started < 5

        upgrade(**where, revision=_one_before_the_head(migrations))
        assert not applied(**where)  # behind the head

        migrate = threading.Timer(0.5, upgrade, kwargs=where)
        migrate.start()
        assert wait_until_applied(**where, timeout_s=60, interval_s=0.1)
        migrate.join()
        assert applied(**where)

        # A newer image's Job migrated further: this image's pods still start (rollout, scale-up, rollback).
        asyncio.run(_set_revision(stack.admin_dsn, schema, "f00dcafe_from_a_newer_image"))
        assert applied(**where)
    finally:
        asyncio.run(_drop(stack.admin_dsn, schema))


def test_an_unreachable_database_is_waited_for_not_fatal(stack: Stack) -> None:
    migrations = build_spec(database_url=stack.admin_dsn, kafka_bootstrap_servers="unused:9092").migrations
    url = "postgresql://nobody:wrong@127.0.0.1:9/siyu"
    assert not wait_until_applied(migrations=migrations, url=url, schema="ingest", timeout_s=0.3, interval_s=0.1)


def _one_before_the_head(migrations: Path) -> str:
    script = ScriptDirectory.from_config(alembic_config(migrations=migrations, url="", schema=""))
    (head,) = script.get_heads()
    before = script.get_revision(head).down_revision
    assert isinstance(before, str)
    return before


async def _set_revision(dsn: str, schema: str, revision: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'UPDATE "{schema}".alembic_version SET version_num = $1', revision)
    finally:
        await conn.close()


async def _drop(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
