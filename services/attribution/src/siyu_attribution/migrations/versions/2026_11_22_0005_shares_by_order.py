"""Attribution shares keyed by order: inserts land next to their order instead of anywhere in the index.

The shares were keyed by (tenant, attribution_id, position), and attribution ids are hashes: every insert landed on
a random page of that index, which, once larger than the shared buffers, made every bulk replay dirty most of its
pages again (and write them whole to the WAL after each checkpoint). Attributions and ledger entries were keyed by
order in 0003 for the same reason. Attribution ids are derived from (tenant, order, cause…), so
(tenant, order_id, attribution_id, position) is exactly as unique as the old key; readers give the order too.

Revision ID: attribution_0005
Revises: attribution_0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "attribution_0005"
down_revision = "attribution_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("attribution_shares", sa.Column("order_id", sa.String(length=128), nullable=True))
    # The table is append-only; filling the new column of the rows already there is the one update it allows.
    op.execute("ALTER TABLE attribution_shares DISABLE TRIGGER attribution_shares_append_only")
    op.execute(
        "UPDATE attribution_shares s SET order_id = a.order_id FROM attributions a "
        "WHERE a.tenant = s.tenant AND a.attribution_id = s.attribution_id"
    )
    op.execute("ALTER TABLE attribution_shares ENABLE TRIGGER attribution_shares_append_only")
    op.alter_column("attribution_shares", "order_id", nullable=False)
    op.drop_constraint("attribution_shares_pkey", "attribution_shares", type_="primary")
    op.create_primary_key(
        "attribution_shares_pkey", "attribution_shares", ["tenant", "order_id", "attribution_id", "position"]
    )


def downgrade() -> None:
    op.drop_constraint("attribution_shares_pkey", "attribution_shares", type_="primary")
    op.create_primary_key("attribution_shares_pkey", "attribution_shares", ["tenant", "attribution_id", "position"])
    op.drop_column("attribution_shares", "order_id")
