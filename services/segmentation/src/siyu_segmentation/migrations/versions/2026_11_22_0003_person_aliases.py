"""Person aliases: merged person ids the consumers hand to handlers under their survivor.

Revision ID: segmentation_0003
Revises: segmentation_0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from siyu_shared.db.platform_migration import create_person_aliases_v1, drop_person_aliases_v1

revision = "segmentation_0003"
down_revision = "segmentation_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_person_aliases_v1()


def downgrade() -> None:
    drop_person_aliases_v1()
