"""Profiles (facts), order and touch facts, rules and families, person tags, backfills, tag counts.

Revision ID: segmentation_0002
Revises: segmentation_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

from siyu_segmentation.adapters.tables import SEGMENTATION_TABLES

revision = "segmentation_0002"
down_revision = "segmentation_0001"
branch_labels = None
depends_on = None


SEG_UNION = """
CREATE OR REPLACE FUNCTION seg_union(a text[], b text[]) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(ARRAY(SELECT DISTINCT x FROM unnest(a || b) x WHERE x IS NOT NULL ORDER BY 1), '{}')
$$
"""


def upgrade() -> None:
    op.execute(SEG_UNION)
    bind = op.get_bind()
    for table in SEGMENTATION_TABLES:
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(SEGMENTATION_TABLES):
        table.drop(bind)
    op.execute("DROP FUNCTION IF EXISTS seg_union(text[], text[])")
