"""Async SQLAlchemy engine and sessions bound to one service schema.

Tables are declared without a schema and the connection's ``search_path`` is the service's schema, so the same
models and migrations run in any schema: the service's own in production, a throwaway one in a test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from siyu_shared.settings import to_asyncpg_url

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(url: str, *, schema: str, pool_size: int = 10, application_name: str = "siyu") -> AsyncEngine:
    """An engine whose every connection works inside ``schema`` (and nothing else on the path)."""
    return create_async_engine(
        to_asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "server_settings": {"search_path": schema, "application_name": application_name},
            "timeout": 5,
            "command_timeout": 60,
        },
    )


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
