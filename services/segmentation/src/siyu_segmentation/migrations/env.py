from alembic import context

from siyu_segmentation.adapters.tables import metadata
from siyu_shared.db.alembic_env import run_migrations

run_migrations(metadata=metadata, url=context.config.attributes["url"], schema=context.config.attributes["schema"])
