"""Person aliases: merged person ids the consumers hand to handlers under their survivor.

Revision ID: attribution_0004
Revises: attribution_0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from siyu_shared.db.platform_migration import create_person_aliases_v1, drop_person_aliases_v1

revision = "attribution_0004"
down_revision = "attribution_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_person_aliases_v1()


def downgrade() -> None:
    drop_person_aliases_v1()
