"""Tables of the ingest schema (unqualified: the connection's search_path is the schema)."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from siyu_shared.db.platform_tables import add_platform_tables

metadata = MetaData()
outbox, inbox, api_keys = add_platform_tables(metadata)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("dedupe_key", String(200), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("query", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("processed_at", DateTime(timezone=True)),
    UniqueConstraint("tenant", "channel", "dedupe_key", name="deliveries_dedupe"),
    Index("deliveries_pending", "id", postgresql_where=text("status = 'pending'")),
    Index("deliveries_tenant_status", "tenant", "status", "id"),
)

channel_credentials = Table(
    "channel_credentials",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("secrets_enc", LargeBinary, nullable=False),
    Column("options", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant", "channel"),
)

persons = Table(
    "persons",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("person_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("merged_into", String(64)),
    Column("erased_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("tenant", "person_id"),
)

identifiers = Table(
    "identifiers",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("value_key", String(64), nullable=False),
    Column("person_id", String(64), nullable=False),
    Column("value_enc", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant", "kind", "value_key"),
    Index("identifiers_person", "tenant", "person_id"),
)

leads = Table(
    "leads",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("lead_id", String(200), nullable=False),
    Column("person_id", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("source", JSONB, nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("name_enc", LargeBinary),
    Column("partial_phone_enc", LargeBinary),
    Column("delivery_id", BigInteger),
    PrimaryKeyConstraint("tenant", "lead_id"),
    Index("leads_person", "tenant", "person_id"),
)

orders = Table(
    "orders",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("order_id", String(200), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("order_no", String(128), nullable=False),
    Column("person_id", String(64)),
    Column("paid", Boolean, nullable=False, server_default="false"),
    Column("amount_fen", BigInteger, nullable=False, server_default="0"),
    Column("refunded_fen", BigInteger, nullable=False, server_default="0"),
    Column("refund_ids", ARRAY(String(128)), nullable=False, server_default="{}"),
    Column("completed", Boolean, nullable=False, server_default="false"),
    Column("closed", Boolean, nullable=False, server_default="false"),
    Column("held", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant", "order_id"),
    Index("orders_person", "tenant", "person_id"),
)

imports = Table(
    "imports",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("import_id", String(36), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False, server_default="running"),
    Column("rows_read", BigInteger, nullable=False, server_default="0"),
    Column("accepted", BigInteger, nullable=False, server_default="0"),
    Column("duplicates", BigInteger, nullable=False, server_default="0"),
    Column("rejected", BigInteger, nullable=False, server_default="0"),
    Column("errors", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("tenant", "import_id"),
)
