"""Touches staff and group activators make by hand, recorded by internal tools.

Revision ID: journey_0003
Revises: journey_0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "journey_0003"
down_revision = "journey_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recorded_touches",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("touch_id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("staff_id", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "touch_id"),
    )
    op.create_index("recorded_touches_person", "recorded_touches", ["tenant", "person_id", "occurred_at"])


def downgrade() -> None:
    op.drop_table("recorded_touches")
