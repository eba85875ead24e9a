"""Journeys, people, enrolments, durable timers, touches, sandbox deliveries, guardrail policies.

Revision ID: journey_0002
Revises: journey_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "journey_0002"
down_revision = "journey_0001"
branch_labels = None
depends_on = None

_NOW = sa.func.now()


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("definition", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("tenant", "journey_id", "version"),
    )
    op.create_index("journeys_live", "journeys", ["tenant"], postgresql_where=sa.text("status = 'published'"))
    op.create_table(
        "people",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("facts", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("owner_staff_id", sa.String(64)),
        sa.Column("external_userid", sa.String(128)),
        sa.Column("opted_out", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("consents", postgresql.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("last_paid_at", sa.DateTime(timezone=True)),
        sa.Column("paid_total_fen", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("tenant", "person_id"),
    )
    op.create_table(
        "enrolments",
        sa.Column("enrolment_id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("entry_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step_id", sa.String(64)),
        sa.Column("visits", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("exit_reason", sa.Text),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant", "journey_id", "person_id", "entry_key", name="enrolments_one_entry"),
    )
    op.create_index("enrolments_person", "enrolments", ["tenant", "person_id", "status"])
    op.create_index("enrolments_journey", "enrolments", ["tenant", "journey_id", "status"])
    op.create_table(
        "timers",
        sa.Column("timer_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("enrolment_id", sa.String(40), nullable=False, unique=True),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("timers_due", "timers", ["due_at"])
    op.create_table(
        "touches",
        sa.Column("touch_id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("enrolment_id", sa.String(40), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("occurrence", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.String(64)),
        sa.Column("priority", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("persona", sa.String(64)),
        sa.Column("staff_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempt_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("touches_pending", "touches", ["due_at"], postgresql_where=sa.text("status = 'pending'"))
    op.create_index("touches_sending", "touches", ["attempt_at"], postgresql_where=sa.text("status = 'sending'"))
    op.create_index("touches_person", "touches", ["tenant", "person_id", "sent_at"])
    op.create_index("touches_enrolment", "touches", ["enrolment_id"])
    op.create_table(
        "sandbox_deliveries",
        sa.Column("touch_id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("staff_id", sa.String(64)),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    op.create_index("sandbox_deliveries_person", "sandbox_deliveries", ["tenant", "person_id"])
    op.create_table(
        "policies",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("policy", postgresql.JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )


def downgrade() -> None:
    for table in ("policies", "sandbox_deliveries", "touches", "timers", "enrolments", "people", "journeys"):
        op.drop_table(table)
