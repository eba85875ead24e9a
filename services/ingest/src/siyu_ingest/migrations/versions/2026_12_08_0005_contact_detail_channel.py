"""WeCom contact details move to their own internal channel.

The worker stored its ``externalcontact/get`` answers as ``wecom`` deliveries marked by an ``x-siyu-origin``
header, and the adapter chose how to read a delivery by that header, which a caller could send too. They now live
on ``wecom_contact_detail``, a channel no webhook route serves. The rows the worker stored before are moved there
(only the worker ever stored that header: the webhook route never kept it).

Revision ID: ingest_0005
Revises: ingest_0004
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "ingest_0005"
down_revision = "ingest_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE deliveries SET channel = 'wecom_contact_detail', headers = headers - 'x-siyu-origin' "
        "WHERE channel = 'wecom' AND headers ->> 'x-siyu-origin' = 'wecom-api'"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE deliveries SET channel = 'wecom', headers = headers || '{\"x-siyu-origin\": \"wecom-api\"}'::jsonb "
        "WHERE channel = 'wecom_contact_detail'"
    )
