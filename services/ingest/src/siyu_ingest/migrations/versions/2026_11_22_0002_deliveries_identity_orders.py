"""Raw deliveries, channel credentials, persons and identifiers, leads, orders.

Revision ID: ingest_0002
Revises: ingest_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "ingest_0002"
down_revision = "ingest_0001"
branch_labels = None
depends_on = None

_NOW = sa.func.now()


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("headers", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("query", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("tenant", "channel", "dedupe_key", name="deliveries_dedupe"),
    )
    op.create_index("deliveries_pending", "deliveries", ["id"], postgresql_where=sa.text("status = 'pending'"))
    op.create_index("deliveries_tenant_status", "deliveries", ["tenant", "status", "id"])
    # Wake the workers (LISTEN ingest_deliveries) when deliveries are committed.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION deliveries_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify(TG_TABLE_SCHEMA || '_deliveries', '');
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries "
        "FOR EACH STATEMENT EXECUTE FUNCTION deliveries_notify()"
    )
    op.create_table(
        "channel_credentials",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("secrets_enc", sa.LargeBinary, nullable=False),
        sa.Column("options", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("tenant", "channel"),
    )
    op.create_table(
        "persons",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("merged_into", sa.String(64)),
        sa.Column("erased_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("tenant", "person_id"),
    )
    op.create_table(
        "identifiers",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("value_key", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("value_enc", sa.LargeBinary),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("tenant", "kind", "value_key"),
    )
    op.create_index("identifiers_person", "identifiers", ["tenant", "person_id"])
    op.create_table(
        "leads",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("lead_id", sa.String(200), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", postgresql.JSONB, nullable=False),
        sa.Column("attributes", postgresql.JSONB, nullable=False),
        sa.Column("name_enc", sa.LargeBinary),
        sa.Column("partial_phone_enc", sa.LargeBinary),
        sa.Column("delivery_id", sa.BigInteger),
        sa.PrimaryKeyConstraint("tenant", "lead_id"),
    )
    op.create_index("leads_person", "leads", ["tenant", "person_id"])
    op.create_table(
        "orders",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("order_no", sa.String(128), nullable=False),
        sa.Column("person_id", sa.String(64)),
        sa.Column("paid", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("amount_fen", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("refunded_fen", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("refund_ids", postgresql.ARRAY(sa.String(128)), nullable=False, server_default="{}"),
        sa.Column("completed", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("closed", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("held", postgresql.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("tenant", "order_id"),
    )
    op.create_index("orders_person", "orders", ["tenant", "person_id"])


def downgrade() -> None:
    op.drop_table("orders")
    op.drop_table("leads")
    op.drop_table("identifiers")
    op.drop_table("persons")
    op.drop_table("channel_credentials")
    op.execute("DROP TRIGGER IF EXISTS deliveries_notify ON deliveries")
    op.drop_table("deliveries")
    op.execute("DROP FUNCTION IF EXISTS deliveries_notify()")
