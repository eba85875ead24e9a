"""Profiles (facts), order and touch facts, rules and families, person tags, backfills, tag counts.

The DDL is written out as it stands at this revision (not derived from adapters/tables.py), so a later change to
the table declarations needs a new revision and this one keeps its meaning.

Revision ID: segmentation_0002
Revises: segmentation_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "segmentation_0002"
down_revision = "segmentation_0001"
branch_labels = None
depends_on = None

SEG_UNION = """
CREATE OR REPLACE FUNCTION seg_union(a text[], b text[]) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(ARRAY(SELECT DISTINCT x FROM unnest(a || b) x WHERE x IS NOT NULL ORDER BY 1), '{}')
$$
"""

DDL = [
    """
CREATE TABLE profiles (
    tenant VARCHAR(64) NOT NULL,
    person_id VARCHAR(64) NOT NULL,
    first_seen_at TIMESTAMP WITH TIME ZONE,
    last_seen_at TIMESTAMP WITH TIME ZONE,
    first_channel TEXT,
    channels TEXT[] DEFAULT '{}' NOT NULL,
    account_kinds TEXT[] DEFAULT '{}' NOT NULL,
    partner_ids TEXT[] DEFAULT '{}' NOT NULL,
    campaign_ids TEXT[] DEFAULT '{}' NOT NULL,
    lead_kinds TEXT[] DEFAULT '{}' NOT NULL,
    lead_count INTEGER DEFAULT '0' NOT NULL,
    incentive BOOLEAN DEFAULT false NOT NULL,
    has_phone BOOLEAN DEFAULT false NOT NULL,
    wecom_status TEXT DEFAULT 'none' NOT NULL,
    wecom_added_at TIMESTAMP WITH TIME ZONE,
    wecom_staff TEXT[] DEFAULT '{}' NOT NULL,
    groups TEXT[] DEFAULT '{}' NOT NULL,
    order_count INTEGER DEFAULT '0' NOT NULL,
    paid_fen BIGINT DEFAULT '0' NOT NULL,
    refunded_fen BIGINT DEFAULT '0' NOT NULL,
    net_fen BIGINT DEFAULT '0' NOT NULL,
    first_order_at TIMESTAMP WITH TIME ZONE,
    last_order_at TIMESTAMP WITH TIME ZONE,
    avg_order_fen NUMERIC,
    mean_interval_days NUMERIC,
    categories TEXT[] DEFAULT '{}' NOT NULL,
    touches_received INTEGER DEFAULT '0' NOT NULL,
    last_touch_at TIMESTAMP WITH TIME ZONE,
    rfm_r SMALLINT,
    rfm_f SMALLINT,
    rfm_m SMALLINT,
    attributes JSONB DEFAULT '{}'::jsonb NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    PRIMARY KEY (tenant, person_id)
)
    """,
    """
CREATE TABLE order_facts (
    tenant VARCHAR(64) NOT NULL,
    order_id VARCHAR(128) NOT NULL,
    person_id VARCHAR(64) NOT NULL,
    paid_at TIMESTAMP WITH TIME ZONE NOT NULL,
    amount_fen BIGINT NOT NULL,
    refunded_fen BIGINT DEFAULT '0' NOT NULL,
    voided BOOLEAN DEFAULT false NOT NULL,
    categories TEXT[] DEFAULT '{}' NOT NULL,
    PRIMARY KEY (tenant, order_id)
)
    """,
    """
CREATE INDEX order_facts_person ON order_facts (tenant, person_id, paid_at)
    """,
    """
CREATE TABLE order_refunds (
    tenant VARCHAR(64) NOT NULL,
    refund_id VARCHAR(128) NOT NULL,
    order_id VARCHAR(128) NOT NULL,
    PRIMARY KEY (tenant, refund_id)
)
    """,
    """
CREATE TABLE touch_facts (
    tenant VARCHAR(64) NOT NULL,
    touch_id VARCHAR(128) NOT NULL,
    person_id VARCHAR(64) NOT NULL,
    occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
    channel VARCHAR(32) NOT NULL,
    status VARCHAR(16) NOT NULL,
    PRIMARY KEY (tenant, touch_id)
)
    """,
    """
CREATE INDEX touch_facts_person ON touch_facts (tenant, person_id, occurred_at)
    """,
    """
CREATE TABLE families (
    tenant VARCHAR(64) NOT NULL,
    family VARCHAR(64) NOT NULL,
    exclusive BOOLEAN DEFAULT false NOT NULL,
    description TEXT DEFAULT '' NOT NULL,
    PRIMARY KEY (tenant, family)
)
    """,
    """
CREATE TABLE rules (
    tenant VARCHAR(64) NOT NULL,
    rule_id VARCHAR(64) NOT NULL,
    version INTEGER NOT NULL,
    tag VARCHAR(64) NOT NULL,
    family VARCHAR(64),
    priority INTEGER DEFAULT '0' NOT NULL,
    enabled BOOLEAN DEFAULT true NOT NULL,
    time_dependent BOOLEAN DEFAULT false NOT NULL,
    body JSONB NOT NULL,
    pack VARCHAR(64),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (tenant, rule_id)
)
    """,
    """
CREATE UNIQUE INDEX rules_live_tag ON rules (tenant, tag) WHERE deleted_at IS NULL
    """,
    """
CREATE TABLE rule_versions (
    tenant VARCHAR(64) NOT NULL,
    rule_id VARCHAR(64) NOT NULL,
    version INTEGER NOT NULL,
    body JSONB NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    PRIMARY KEY (tenant, rule_id, version)
)
    """,
    """
CREATE TABLE tenant_state (
    tenant VARCHAR(64) NOT NULL,
    rules_version BIGINT DEFAULT '0' NOT NULL,
    PRIMARY KEY (tenant)
)
    """,
    """
CREATE TABLE person_tags (
    tenant VARCHAR(64) NOT NULL,
    person_id VARCHAR(64) NOT NULL,
    tag VARCHAR(64) NOT NULL,
    family VARCHAR(64),
    rule_id VARCHAR(64) NOT NULL,
    rule_version INTEGER NOT NULL,
    tagged_at TIMESTAMP WITH TIME ZONE NOT NULL,
    facts JSONB DEFAULT '{}'::jsonb NOT NULL,
    PRIMARY KEY (tenant, person_id, tag)
)
    """,
    """
CREATE INDEX person_tags_tag ON person_tags (tenant, tag)
    """,
    """
CREATE TABLE backfills (
    id BIGSERIAL NOT NULL,
    tenant VARCHAR(64) NOT NULL,
    reason TEXT NOT NULL,
    scope JSONB NOT NULL,
    status VARCHAR(16) NOT NULL,
    total BIGINT DEFAULT '0' NOT NULL,
    processed BIGINT DEFAULT '0' NOT NULL,
    changed BIGINT DEFAULT '0' NOT NULL,
    cursor VARCHAR(64),
    cancel_requested BOOLEAN DEFAULT false NOT NULL,
    error TEXT,
    started_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    finished_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id)
)
    """,
    """
CREATE INDEX ix_backfills_tenant ON backfills (tenant)
    """,
    """
CREATE TABLE tag_counts (
    tenant VARCHAR(64) NOT NULL,
    day DATE NOT NULL,
    tag VARCHAR(64) NOT NULL,
    members BIGINT NOT NULL,
    PRIMARY KEY (tenant, day, tag)
)
    """,
    """
CREATE UNLOGGED TABLE seg_diff (
    tenant VARCHAR(64) NOT NULL,
    person_id VARCHAR(64) NOT NULL,
    tag VARCHAR(64) NOT NULL,
    added BOOLEAN NOT NULL,
    family VARCHAR(64),
    rule_id VARCHAR(64),
    rule_version INTEGER
)
    """,
]

TABLES = [
    "profiles",
    "order_facts",
    "order_refunds",
    "touch_facts",
    "families",
    "rules",
    "rule_versions",
    "tenant_state",
    "person_tags",
    "backfills",
    "tag_counts",
    "seg_diff",
]


def upgrade() -> None:
    op.execute(SEG_UNION)
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS seg_union(text[], text[])")
