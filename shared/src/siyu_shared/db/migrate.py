"""Run a service's Alembic migrations programmatically (``siyu-<service> migrate``, tests, prestart jobs), and
check or wait that they are applied (``siyu-<service> migrate --check`` / ``--wait``, the pods' init containers)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

from siyu_shared.db.engine import create_engine
from siyu_shared.logging import get_logger

log = get_logger(__name__)


def alembic_config(*, migrations: Path, url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["url"] = url
    config.attributes["schema"] = schema
    return config


def upgrade(*, migrations: Path, url: str, schema: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations=migrations, url=url, schema=schema), revision)


def applied(*, migrations: Path, url: str, schema: str) -> bool:
    """Whether this code's migrations are all applied: what an api or worker needs before it starts.

    The database is at this code's head(s), or ahead of them: a revision this code does not know was written by a
    newer image's migration Job, and migrations are expand/contract (a new revision only adds what older code can
    ignore), so pods of the previous image still start during a rollout, a scale-up mid-rollout or a rollback."""
    script = ScriptDirectory.from_config(alembic_config(migrations=migrations, url=url, schema=schema))
    current = asyncio.run(_current_revisions(url, schema))
    if not current:
        return False
    known = {rev.revision for rev in script.walk_revisions()}
    return current == set(script.get_heads()) or not current <= known


async def _current_revisions(url: str, schema: str) -> set[str]:
    """The revisions Alembic records in the service's schema (none before the first migration)."""
    engine = create_engine(url, schema=schema, pool_size=1, application_name=f"{schema}-migrate-check")
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: set(
                    MigrationContext.configure(sync, opts={"version_table_schema": schema}).get_current_heads()
                )
            )
    finally:
        await engine.dispose()


def wait_until_applied(*, migrations: Path, url: str, schema: str, timeout_s: float, interval_s: float = 2.0) -> bool:
    """Poll :func:`applied` until it holds (True) or ``timeout_s`` passes (False). An unreachable database counts as
    not yet: a pod's init container starts this while the database or the migration Job may still be coming up."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if applied(migrations=migrations, url=url, schema=schema):
                return True
        except (OSError, SQLAlchemyError) as exc:
            log.info("migrations_not_checkable_yet", schema=schema, error=repr(exc))
        if time.monotonic() + interval_s > deadline:
            return False
        time.sleep(interval_s)
