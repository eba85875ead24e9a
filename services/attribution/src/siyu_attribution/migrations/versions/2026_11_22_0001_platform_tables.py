"""Platform tables: outbox, inbox, api_keys.

Revision ID: attribution_0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from siyu_shared.db.platform_migration import create_platform_tables_v1, drop_platform_tables_v1

revision = "attribution_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables_v1()


def downgrade() -> None:
    drop_platform_tables_v1()
