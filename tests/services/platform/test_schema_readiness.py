"""Readiness waits for the migrations: a pod whose database has no schema yet (first
install, hook still running) or an older one must not take traffic; a newer one (a Helm
upgrade migrates before it rolls the old pods) must not take the old pods out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from services.consolidado.app import MIGRATIONS as CONSOLIDADO_MIGRATIONS
from services.lancamentos.app import MIGRATIONS as LANCAMENTOS_MIGRATIONS
from services.platform import database
from services.platform.migrations import SchemaCheck, SchemaNotReady, upgrade


@pytest.mark.parametrize("migrations", [LANCAMENTOS_MIGRATIONS, CONSOLIDADO_MIGRATIONS])
async def test_ready_only_at_this_builds_head_or_newer(
    make_database: Callable[[str], str], migrations: Path
) -> None:
    check = SchemaCheck.of(migrations)
    url = await asyncio.to_thread(make_database, "schema_check")
    engine = database.create_engine(url, pool_size=1)
    try:
        with pytest.raises(SchemaNotReady, match="no schema yet"):
            await check(engine)

        await asyncio.to_thread(upgrade, migrations, url)
        await check(engine)

        if check.behind:
            older = sorted(check.behind)[0]
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE alembic_version SET version_num = :v"), {"v": older}
                )
            with pytest.raises(SchemaNotReady, match=f"at {older}"):
                await check(engine)

        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE alembic_version SET version_num = 'from_a_newer_build'")
            )
        await check(engine)
    finally:
        await engine.dispose()
