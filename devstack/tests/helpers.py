"""Small helpers for the devstack tests."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from siyu_devstack.provision import libpq_dsn


async def connect(dsn: str) -> asyncpg.Connection:
    """asyncpg connection from a libpq or SQLAlchemy (``postgresql+asyncpg://``) URL."""
    return await asyncpg.connect(libpq_dsn(dsn))
