"""The shares' payee index covers commission shares only: activity credits are never looked up by payee.

``shares_by_payee`` served one reader that needs it, the month-to-date figures behind tiers and monthly caps
(``adapters.books.month_figures``), which asks for commission shares only (``kind = 'commission'``, a literal in
the query so that a generic plan can use a partial index too). The payees report joins the shares of the period's
orders by the primary key. Group activators' activity credits (base and gross 0) were half the shares the index
carried, one index insert per order on every write of an attribution, bulk replays included, for no reader.

Revision ID: attribution_0006
Revises: attribution_0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "attribution_0006"
down_revision = "attribution_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "commission_shares_by_payee",
        "attribution_shares",
        ["tenant", "payee_id"],
        postgresql_where=sa.text("kind = 'commission'"),
    )
    op.drop_index("shares_by_payee", table_name="attribution_shares")


def downgrade() -> None:
    op.create_index("shares_by_payee", "attribution_shares", ["tenant", "payee_id"])
    op.drop_index("commission_shares_by_payee", table_name="attribution_shares")
