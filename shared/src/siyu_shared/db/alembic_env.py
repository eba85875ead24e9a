"""The body of every service's Alembic ``env.py``: online migrations in the service's own schema.

The version table lives in the service schema, and the connection's search_path is that schema, so unqualified
table names in migrations land there.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from siyu_shared.db.engine import create_engine


def run_migrations(*, metadata: MetaData, url: str, schema: str) -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline migrations are not supported; run them against a database")
    asyncio.run(_run_online(metadata=metadata, url=url, schema=schema))


async def _run_online(*, metadata: MetaData, url: str, schema: str) -> None:
    engine = create_engine(url, schema=schema, pool_size=1, application_name=f"{schema}-migrate")
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema})
            if not exists:  # normally provisioned (owned by the service role); create it for bare setups
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            await conn.commit()
            await conn.run_sync(_run_sync, metadata=metadata, schema=schema)
            # Alembic leaves an already-begun transaction to its owner: commit it, or it rolls back on close.
            await conn.commit()
    finally:
        await engine.dispose()


def _run_sync(conn: Connection, *, metadata: MetaData, schema: str) -> None:
    context.configure(
        connection=conn,
        target_metadata=metadata,
        version_table_schema=schema,
        include_schemas=False,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
