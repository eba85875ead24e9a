"""Tables every service schema has: the outbox, the inbox, API keys and the person aliases consumers follow.

Declared on the service's own ``MetaData`` (see ``add_platform_tables``) so the service's migrations and
``metadata.create_all`` create them in the service schema. Names are unqualified on purpose (search_path).
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

OUTBOX_CHANNEL_SUFFIX = "_outbox"


def add_platform_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    """Declare outbox, inbox and api_keys on ``metadata``; returns them in that order."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", String(200), nullable=False, unique=True),
        Column("topic", String(249), nullable=False),
        Column("key", String(200)),
        Column("event_type", String(100), nullable=False),
        Column("tenant", String(64), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Index("outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
        Index("outbox_published_at", "published_at", postgresql_where=text("published_at IS NOT NULL")),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("event_id", String(200), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    api_keys = Table(
        "api_keys",
        metadata,
        Column("key_id", String(32), primary_key=True),
        Column("tenant", String(64), nullable=False, index=True),
        Column("name", Text, nullable=False),
        Column("scopes", ARRAY(String(16)), nullable=False),
        Column("secret_hash", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("revoked_at", DateTime(timezone=True)),
    )
    Table(
        "person_aliases",
        metadata,
        Column("tenant", String(64), primary_key=True),
        Column("person_id", String(64), primary_key=True),
        Column("survivor_id", String(64), nullable=False),
        Column("merged_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return outbox, inbox, api_keys


def outbox_notify_channel(schema: str) -> str:
    return f"{schema}{OUTBOX_CHANNEL_SUFFIX}"


def outbox_notify_ddl() -> list[str]:
    """A statement-level trigger that wakes relays (LISTEN) when rows are committed to the outbox.

    The channel is named after the schema the table lives in, so relays of different schemas never wake each other.
    """
    return [
        """
        CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
          RETURN NULL;
        END $$
        """,
        "DROP TRIGGER IF EXISTS outbox_notify ON outbox",
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()",
    ]
