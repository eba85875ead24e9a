"""Tables of the attribution schema (unqualified: the connection's search_path is the schema).

Projections of what other services told us (orders, refunds, touches, leads) change as events arrive; the
records of decisions and money (claims, overrides, plans, attributions, ledger entries, statements, period
closes) are append-only: the migration installs a trigger that refuses UPDATE, DELETE and TRUNCATE on them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from siyu_shared.db.platform_tables import add_platform_tables

metadata = MetaData()
outbox, inbox, api_keys = add_platform_tables(metadata)

APPEND_ONLY = (
    "claims",
    "overrides",
    "plans",
    "attributions",
    "attribution_shares",
    "ledger_entries",
    "statements",
    "period_closes",
)


def _tenant() -> Column[str]:
    return Column("tenant", String(64), primary_key=True)


def _created() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


orders = Table(
    "orders",
    metadata,
    _tenant(),
    Column("order_id", String(128), primary_key=True),
    Column("order_no", String(128), nullable=False),
    Column("person_id", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("refunded_fen", BigInteger, nullable=False, server_default="0"),
    Column("lines", JSONB, nullable=False),
    Column("source", JSONB),
    Column("paid_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("plan_id", String(64), nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("attribution_id", String(64)),
    Column("settle_due_at", DateTime(timezone=True)),
    Column("settled_at", DateTime(timezone=True)),
    Index("orders_by_order_no", "tenant", "order_no"),
    Index("orders_by_person", "tenant", "person_id", "paid_at"),
    Index("orders_settle_due", "settle_due_at", postgresql_where="settled_at IS NULL AND settle_due_at IS NOT NULL"),
)

refunds = Table(
    "refunds",
    metadata,
    _tenant(),
    Column("refund_id", String(128), primary_key=True),
    Column("order_id", String(128), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("refunded_at", DateTime(timezone=True), nullable=False),
)

touches = Table(
    "touches",
    metadata,
    _tenant(),
    Column("touch_id", String(128), primary_key=True),
    Column("person_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("staff_id", String(128)),
    Column("persona", String(128)),
    Column("campaign_id", String(128)),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Index("touches_by_person", "tenant", "person_id", "occurred_at"),
)

leads = Table(
    "leads",
    metadata,
    _tenant(),
    Column("lead_id", String(128), primary_key=True),
    Column("person_id", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("account_kind", String(16), nullable=False),
    Column("partner_id", String(128)),
    Column("campaign_id", String(128)),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Index("leads_by_person", "tenant", "person_id", "occurred_at"),
)

claims = Table(
    "claims",
    metadata,
    _tenant(),
    Column("claim_id", String(64), primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("order_no", String(128), nullable=False),
    Column("staff_id", String(128), nullable=False),
    Column("role", String(32), nullable=False),
    Column("via", String(16), nullable=False),
    Column("note", Text),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Index("claims_by_order_no", "tenant", "order_no"),
)

overrides = Table(
    "overrides",
    metadata,
    _tenant(),
    Column("override_id", String(64), primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("order_no", String(128), nullable=False),
    Column("payee_id", String(128), nullable=False),
    Column("payee_role", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("auditor_key_id", String(32), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Index("overrides_by_order_no", "tenant", "order_no"),
)

plans = Table(
    "plans",
    metadata,
    _tenant(),
    Column("plan_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("effective_from", DateTime(timezone=True), nullable=False),
    Column("body", JSONB, nullable=False),
    _created(),
)

attributions = Table(
    "attributions",
    metadata,
    _tenant(),
    Column("order_id", String(128), primary_key=True),
    Column("attribution_id", String(64), primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("model", String(64), nullable=False),
    Column("plan_id", String(64), nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("cause", String(200), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)

attribution_shares = Table(
    "attribution_shares",
    metadata,
    _tenant(),
    Column("order_id", String(128), primary_key=True),
    Column("attribution_id", String(64), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("payee_id", String(128), nullable=False),
    Column("payee_role", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("basis", String(200), nullable=False),
    Column("base_fen", BigInteger, nullable=False),
    Column("gross_fen", BigInteger, nullable=False),
    # Month-to-date figures per payee read commission shares only (migration 0006).
    Index("commission_shares_by_payee", "tenant", "payee_id", postgresql_where=text("kind = 'commission'")),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    _tenant(),
    Column("order_id", String(128), primary_key=True),
    Column("entry_id", String(64), primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("txn_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("account", String(160), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("payee_id", String(128), nullable=False),
    Column("payee_role", String(32), nullable=False),
    Column("rule", String(300), nullable=False),
    Column("plan_id", String(64), nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("attribution_id", String(64), nullable=False),
    Column("posted_at", DateTime(timezone=True), nullable=False),
    Column("period", String(7), nullable=False),
    _created(),
    Index("ledger_by_period", "tenant", "period", "payee_id"),
)

statements = Table(
    "statements",
    metadata,
    _tenant(),
    Column("statement_id", String(64), primary_key=True),
    Column("payee_id", String(128), nullable=False),
    Column("period", String(7), nullable=False),
    Column("total_fen", BigInteger, nullable=False),
    Column("entry_count", Integer, nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    Index("statements_by_payee", "tenant", "payee_id", "period", unique=True),
)

period_closes = Table(
    "period_closes",
    metadata,
    _tenant(),
    Column("period", String(7), primary_key=True),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    Column("statement_count", Integer, nullable=False),
)
