"""Ledger entries and attributions keyed by order: one index less each, and inserts land next to their order.

Entry and attribution ids are derived from (tenant, order, cause…), so (tenant, order_id, id) is exactly as unique
as (tenant, id) was; the separate by-order indexes become the primary keys' prefixes.

Revision ID: attribution_0003
Revises: attribution_0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "attribution_0003"
down_revision = "attribution_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ledger_by_order", table_name="ledger_entries")
    op.drop_constraint("ledger_entries_pkey", "ledger_entries", type_="primary")
    op.create_primary_key("ledger_entries_pkey", "ledger_entries", ["tenant", "order_id", "entry_id"])
    op.drop_index("attributions_by_order", table_name="attributions")
    op.drop_constraint("attributions_pkey", "attributions", type_="primary")
    op.create_primary_key("attributions_pkey", "attributions", ["tenant", "order_id", "attribution_id"])


def downgrade() -> None:
    op.drop_constraint("attributions_pkey", "attributions", type_="primary")
    op.create_primary_key("attributions_pkey", "attributions", ["tenant", "attribution_id"])
    op.create_index("attributions_by_order", "attributions", ["tenant", "order_id"])
    op.drop_constraint("ledger_entries_pkey", "ledger_entries", type_="primary")
    op.create_primary_key("ledger_entries_pkey", "ledger_entries", ["tenant", "entry_id"])
    op.create_index("ledger_by_order", "ledger_entries", ["tenant", "order_id"])
