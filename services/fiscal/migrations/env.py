from services.fiscal.tables import metadata
from services.platform.migrations import run_migrations

run_migrations(metadata)
