"""Async SQLAlchemy engine and sessions bound to one service schema.

Tables are declared without a schema and the connection's ``search_path`` is the service's schema, so the same
models and migrations run in any schema: the service's own in production, a throwaway one in a test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from siyu_shared.settings import to_asyncpg_url

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(url: str, *, schema: str, pool_size: int = 10, application_name: str = "siyu") -> AsyncEngine:
    """An engine whose every connection works inside ``schema`` (and nothing else on the path).

    A pooled connection is pinged when it is checked out (a dead one is replaced), with one round trip: SQLAlchemy's
    own ``pool_pre_ping`` for asyncpg wraps its ping in BEGIN … ROLLBACK (for PgBouncer's transaction mode, which
    Siyu does not use), three round trips on every checkout."""
    engine = create_async_engine(
        to_asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={
            "server_settings": {"search_path": schema, "application_name": application_name},
            "timeout": 5,
            "command_timeout": 60,
        },
    )
    event.listen(engine.sync_engine, "checkout", _ping_on_checkout)
    return engine


def _ping_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    try:
        dbapi_connection.run_async(lambda connection: connection.execute("SELECT 1"))
    except Exception as exc:  # the pool discards the connection and checks out (or makes) another
        raise DisconnectionError(f"pooled connection failed its ping: {exc!r}") from exc


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One transaction: commits when the block ends normally, rolls back on any exception."""
    async with sessions() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
