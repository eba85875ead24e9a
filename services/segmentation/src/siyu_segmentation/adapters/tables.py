"""Tables of the segmentation schema (unqualified: the connection's search_path is the schema).

Every table carries `tenant`, and every query filters by it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from siyu_shared.db.platform_tables import add_platform_tables

metadata = MetaData()
outbox, inbox, api_keys = add_platform_tables(metadata)

TENANT = String(64)
PERSON = String(64)


def _set(name: str) -> Column[list[str]]:
    return Column(name, ARRAY(Text), nullable=False, server_default=text("'{}'"))


profiles = Table(
    "profiles",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("person_id", PERSON, primary_key=True),
    Column("first_seen_at", DateTime(timezone=True)),
    Column("last_seen_at", DateTime(timezone=True)),
    Column("first_channel", Text),
    _set("channels"),
    _set("account_kinds"),
    _set("partner_ids"),
    _set("campaign_ids"),
    _set("lead_kinds"),
    Column("lead_count", Integer, nullable=False, server_default="0"),
    Column("incentive", Boolean, nullable=False, server_default=text("false")),
    Column("has_phone", Boolean, nullable=False, server_default=text("false")),
    Column("wecom_status", Text, nullable=False, server_default="none"),
    Column("wecom_added_at", DateTime(timezone=True)),
    _set("wecom_staff"),
    _set("groups"),
    Column("order_count", Integer, nullable=False, server_default="0"),
    Column("paid_fen", BigInteger, nullable=False, server_default="0"),
    Column("refunded_fen", BigInteger, nullable=False, server_default="0"),
    Column("net_fen", BigInteger, nullable=False, server_default="0"),
    Column("first_order_at", DateTime(timezone=True)),
    Column("last_order_at", DateTime(timezone=True)),
    Column("avg_order_fen", Numeric),
    Column("mean_interval_days", Numeric),
    _set("categories"),
    Column("touches_received", Integer, nullable=False, server_default="0"),
    Column("last_touch_at", DateTime(timezone=True)),
    Column("rfm_r", SmallInteger),
    Column("rfm_f", SmallInteger),
    Column("rfm_m", SmallInteger),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

order_facts = Table(
    "order_facts",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("order_id", String(128), primary_key=True),
    Column("person_id", PERSON, nullable=False),
    Column("paid_at", DateTime(timezone=True), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("refunded_fen", BigInteger, nullable=False, server_default="0"),
    Column("voided", Boolean, nullable=False, server_default=text("false")),
    _set("categories"),
    Index("order_facts_person", "tenant", "person_id", "paid_at"),
)

order_refunds = Table(
    "order_refunds",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("refund_id", String(128), primary_key=True),
    Column("order_id", String(128), nullable=False),
)

touch_facts = Table(
    "touch_facts",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("touch_id", String(128), primary_key=True),
    Column("person_id", PERSON, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Index("touch_facts_person", "tenant", "person_id", "occurred_at"),
)

families = Table(
    "families",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("family", String(64), primary_key=True),
    Column("exclusive", Boolean, nullable=False, server_default=text("false")),
    Column("description", Text, nullable=False, server_default=""),
)

rules = Table(
    "rules",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("tag", String(64), nullable=False),
    Column("family", String(64)),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("time_dependent", Boolean, nullable=False, server_default=text("false")),
    Column("body", JSONB, nullable=False),
    Column("pack", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_at", DateTime(timezone=True)),
    Index("rules_live_tag", "tenant", "tag", unique=True, postgresql_where=text("deleted_at IS NULL")),
)

rule_versions = Table(
    "rule_versions",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

tenant_state = Table(
    "tenant_state",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("rules_version", BigInteger, nullable=False, server_default="0"),
)

person_tags = Table(
    "person_tags",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("person_id", PERSON, primary_key=True),
    Column("tag", String(64), primary_key=True),
    Column("family", String(64)),
    Column("rule_id", String(64), nullable=False),
    Column("rule_version", Integer, nullable=False),
    Column("tagged_at", DateTime(timezone=True), nullable=False),
    Column("facts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("person_tags_tag", "tag", "tenant", "person_id"),  # by tag; a person's tags come by the primary key
)

backfills = Table(
    "backfills",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant", TENANT, nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("scope", JSONB, nullable=False),  # {"rule_ids": [...], "drop_tags": [...]}: what is re-evaluated
    # pending | running | done | cancelled; a step that raises is logged and retried, so `error` stays unwritten
    Column("status", String(16), nullable=False),
    Column("total", BigInteger, nullable=False, server_default="0"),
    Column("processed", BigInteger, nullable=False, server_default="0"),
    Column("changed", BigInteger, nullable=False, server_default="0"),
    Column("cursor", PERSON),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
)

tag_counts = Table(
    "tag_counts",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("tag", String(64), primary_key=True),
    Column("members", BigInteger, nullable=False),
)

seg_diff = Table(
    "seg_diff",
    metadata,
    # Scratch space of one re-evaluation chunk: filled and emptied inside its transaction, so no other
    # transaction ever sees a row (the service role may not create temporary tables). Unlogged: never durable.
    Column("tenant", TENANT, nullable=False),
    Column("person_id", PERSON, nullable=False),
    Column("tag", String(64), nullable=False),
    Column("added", Boolean, nullable=False),
    Column("family", String(64)),
    Column("rule_id", String(64)),
    Column("rule_version", Integer),
    prefixes=["UNLOGGED"],
)
