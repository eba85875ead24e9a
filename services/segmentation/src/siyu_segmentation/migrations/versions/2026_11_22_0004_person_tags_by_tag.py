"""person_tags_tag leads with the tag: (tag, tenant, person_id) instead of (tenant, tag).

With the tenant leading, a tenant the statistics do not know yet (new, or grown since the last ANALYZE) looked tiny,
and the smaller tag index won ties against the primary key for "this person's tags" (tenant, person_id): the batch
handler then read every tag row of the tenant for each person. Led by the tag, the index only serves what it is for
(members of a tag in person order, a backfill's tags), and a person's tags always come by the primary key.

Revision ID: segmentation_0004
Revises: segmentation_0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "segmentation_0004"
down_revision = "segmentation_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS person_tags_tag")
    op.execute("CREATE INDEX person_tags_tag ON person_tags (tag, tenant, person_id)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS person_tags_tag")
    op.execute("CREATE INDEX person_tags_tag ON person_tags (tenant, tag)")
