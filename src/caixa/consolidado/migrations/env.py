from caixa.consolidado.tables import metadata
from caixa.platform.migrations import run_migrations

run_migrations(metadata)
