"""Tables of the journey schema (unqualified: the connection's search_path is the schema)."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from siyu_shared.db.platform_tables import add_platform_tables

metadata = MetaData()
outbox, inbox, api_keys = add_platform_tables(metadata)

journeys = Table(
    "journeys",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("journey_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # draft | published | paused | superseded | archived
    Column("definition", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant", "journey_id", "version"),
    Index("journeys_live", "tenant", postgresql_where=text("status = 'published'")),
)

people = Table(
    "people",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("person_id", String(64), nullable=False),
    Column("tags", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("facts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("owner_staff_id", String(64)),
    Column("external_userid", String(128)),
    Column("opted_out", Boolean, nullable=False, server_default=text("false")),
    Column("consents", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("last_paid_at", DateTime(timezone=True)),
    Column("paid_total_fen", BigInteger, nullable=False, server_default=text("0")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant", "person_id"),
)

enrolments = Table(
    "enrolments",
    metadata,
    Column("enrolment_id", String(40), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("journey_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("person_id", String(64), nullable=False),
    Column("entry_key", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # active | completed | exited
    Column("step_id", String(64)),
    Column("visits", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("exit_reason", Text),
    Column("entered_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant", "journey_id", "person_id", "entry_key", name="enrolments_one_entry"),
    # No index holds ``status`` and each page keeps room: an enrolment's update is HOT, heap only (journey_0005).
    Index("enrolments_person", "tenant", "person_id"),
    Index("enrolments_journey", "tenant", "journey_id"),
    postgresql_with={"fillfactor": 50},
)

timers = Table(
    "timers",
    metadata,
    Column("timer_id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("enrolment_id", String(40), nullable=False, unique=True),
    Column("step_id", String(64), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Index("timers_due", "due_at"),
)

touches = Table(
    "touches",
    metadata,
    Column("touch_id", String(40), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("enrolment_id", String(40), nullable=False),
    Column("person_id", String(64), nullable=False),
    Column("journey_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("occurrence", Integer, nullable=False),
    Column("channel", String(32), nullable=False),
    Column("template", String(64), nullable=False),
    Column("campaign_id", String(64)),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("persona", String(64)),
    Column("staff_id", String(64)),
    Column("status", String(16), nullable=False),  # pending | sending | sent | failed | skipped
    Column("reason", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("attempt_at", DateTime(timezone=True)),
    Column("sent_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("touches_pending", "due_at", postgresql_where=text("status = 'pending'")),
    Index("touches_sending", "attempt_at", postgresql_where=text("status = 'sending'")),
    Index("touches_person", "tenant", "person_id", "sent_at"),
    Index("touches_enrolment", "enrolment_id"),
)

sandbox_deliveries = Table(
    "sandbox_deliveries",
    metadata,
    Column("touch_id", String(40), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("person_id", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("staff_id", String(64)),
    Column("body", Text, nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("sandbox_deliveries_person", "tenant", "person_id"),
)

policies = Table(
    "policies",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("policy", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

recorded_touches = Table(
    "recorded_touches",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("touch_id", String(40), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("person_id", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("staff_id", String(64), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant", "touch_id"),
    Index("recorded_touches_person", "tenant", "person_id", "occurred_at"),
)
