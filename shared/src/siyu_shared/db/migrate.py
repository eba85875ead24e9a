"""Run a service's Alembic migrations programmatically (``siyu-<service> migrate``, tests, prestart jobs)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config


def alembic_config(*, migrations: Path, url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["url"] = url
    config.attributes["schema"] = schema
    return config


def upgrade(*, migrations: Path, url: str, schema: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations=migrations, url=url, schema=schema), revision)
