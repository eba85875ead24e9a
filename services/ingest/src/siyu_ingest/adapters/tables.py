"""Tables of the ingest schema (unqualified: the connection's search_path is the schema)."""

from __future__ import annotations

from sqlalchemy import MetaData

from siyu_shared.db.platform_tables import add_platform_tables

metadata = MetaData()
outbox, inbox, api_keys = add_platform_tables(metadata)
