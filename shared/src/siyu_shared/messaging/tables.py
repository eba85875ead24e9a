"""The platform tables as module-level objects, for the shared code that reads and writes them.

Each service declares the same tables on its own metadata (``add_platform_tables``) for its migrations; the
shared code uses this copy. Both are unqualified and resolve through the connection's search_path.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from siyu_shared.db.platform_tables import add_platform_tables

platform_metadata = MetaData()
outbox_table, inbox_table, api_keys_table = add_platform_tables(platform_metadata)
