"""Attribution tables: order/touch/lead projections, claims, overrides, plans, attributions, ledger, statements.

The decision and money tables are append-only: a trigger refuses UPDATE, DELETE and TRUNCATE on them.

Revision ID: attribution_0002
Revises: attribution_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "attribution_0002"
down_revision = "attribution_0001"
branch_labels = None
depends_on = None

APPEND_ONLY = (
    "claims",
    "overrides",
    "plans",
    "attributions",
    "attribution_shares",
    "ledger_entries",
    "statements",
    "period_closes",
)
TABLES = ("orders", "refunds", "touches", "leads", *APPEND_ONLY)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("order_no", sa.String(length=128), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=Text()), nullable=False),
        sa.Column("source", postgresql.JSONB(astext_type=Text()), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("attribution_id", sa.String(length=64), nullable=True),
        sa.Column("settle_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "order_id"),
    )
    op.create_index("orders_by_order_no", "orders", ["tenant", "order_no"], unique=False)
    op.create_index(
        "orders_settle_due",
        "orders",
        ["settle_due_at"],
        unique=False,
        postgresql_where="settled_at IS NULL AND settle_due_at IS NOT NULL",
    )
    op.create_index("orders_by_person", "orders", ["tenant", "person_id", "paid_at"], unique=False)
    op.create_table(
        "refunds",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("refund_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "refund_id"),
    )
    op.create_table(
        "touches",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("touch_id", sa.String(length=128), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.String(length=128), nullable=True),
        sa.Column("persona", sa.String(length=128), nullable=True),
        sa.Column("campaign_id", sa.String(length=128), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "touch_id"),
    )
    op.create_index("touches_by_person", "touches", ["tenant", "person_id", "occurred_at"], unique=False)
    op.create_table(
        "leads",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=128), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("account_kind", sa.String(length=16), nullable=False),
        sa.Column("partner_id", sa.String(length=128), nullable=True),
        sa.Column("campaign_id", sa.String(length=128), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "lead_id"),
    )
    op.create_index("leads_by_person", "leads", ["tenant", "person_id", "occurred_at"], unique=False)
    op.create_table(
        "claims",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("claim_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_no", sa.String(length=128), nullable=False),
        sa.Column("staff_id", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "claim_id"),
    )
    op.create_index("claims_by_order_no", "claims", ["tenant", "order_no"], unique=False)
    op.create_table(
        "overrides",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("override_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_no", sa.String(length=128), nullable=False),
        sa.Column("payee_id", sa.String(length=128), nullable=False),
        sa.Column("payee_role", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("auditor_key_id", sa.String(length=32), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "override_id"),
    )
    op.create_index("overrides_by_order_no", "overrides", ["tenant", "order_no"], unique=False)
    op.create_table(
        "plans",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "plan_id", "version"),
    )
    op.create_table(
        "attributions",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("attribution_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("cause", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "attribution_id"),
    )
    op.create_index("attributions_by_order", "attributions", ["tenant", "order_id"], unique=False)
    op.create_table(
        "attribution_shares",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("attribution_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("payee_id", sa.String(length=128), nullable=False),
        sa.Column("payee_role", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("basis", sa.String(length=200), nullable=False),
        sa.Column("base_fen", sa.BigInteger(), nullable=False),
        sa.Column("gross_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "attribution_id", "position"),
    )
    op.create_index("shares_by_payee", "attribution_shares", ["tenant", "payee_id"], unique=False)
    op.create_table(
        "ledger_entries",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("entry_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("txn_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=160), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("payee_id", sa.String(length=128), nullable=False),
        sa.Column("payee_role", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=300), nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("attribution_id", sa.String(length=64), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "entry_id"),
    )
    op.create_index("ledger_by_period", "ledger_entries", ["tenant", "period", "payee_id"], unique=False)
    op.create_index("ledger_by_order", "ledger_entries", ["tenant", "order_id"], unique=False)
    op.create_table(
        "statements",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("statement_id", sa.String(length=64), nullable=False),
        sa.Column("payee_id", sa.String(length=128), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "statement_id"),
    )
    op.create_index("statements_by_payee", "statements", ["tenant", "payee_id", "period"], unique=True)
    op.create_table(
        "period_closes",
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("statement_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "period"),
    )
    op.execute(
        """
        CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% on %.% refused: the table is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()"
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    op.execute("DROP FUNCTION refuse_change()")
