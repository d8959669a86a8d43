"""The migrations build exactly the tables the code declares (services.fiscal.tables):
alembic's autogenerate, run against the migrated database, finds nothing to add."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from services.fiscal.app import FiscalApp
from services.fiscal.tables import metadata

AUDIT_TABLES = {"audit_records", "audit_heads"}  # SQL of the shared audit schema


def _differences(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_server_default": False})
    return [
        d
        for d in compare_metadata(context, metadata)
        if not (d[0] == "remove_table" and d[1].name in AUDIT_TABLES | {"alembic_version"})
    ]


async def test_the_migrations_match_the_tables(fiscal_app: FiscalApp) -> None:
    async with fiscal_app.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []
