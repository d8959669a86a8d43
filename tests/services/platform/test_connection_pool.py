"""The services' database pool heals by itself."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from services.platform.database import asyncpg_dsn, create_engine, pooled_driver
from services.platform.outages import is_dependency_outage


async def test_a_dead_connection_on_the_driver_path_is_replaced(
    make_database: Callable[[str], str], pg_admin_url: str
) -> None:
    """SQLAlchemy discards a connection it sees die, but not one that died under
    a statement sent on the driver connection: that one went back to the pool
    and failed every caller after. (In a service the readiness probe's own
    failure happened to clear the pool; nothing else did.)"""
    engine = create_engine(make_database("pool_dead"), pool_size=1)
    admin = await asyncpg.connect(asyncpg_dsn(pg_admin_url))
    try:
        async with pooled_driver(engine) as driver:
            pid = await driver.fetchval("SELECT pg_backend_pid()")
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        outcomes = []
        for _ in range(4):
            try:
                async with pooled_driver(engine) as driver:
                    outcomes.append(await driver.fetchval("SELECT 1"))
            except Exception as error:
                assert is_dependency_outage(error), error  # a retryable UNAVAILABLE
                outcomes.append("dead")
        assert outcomes == ["dead", 1, 1, 1]
    finally:
        await admin.close()
        await engine.dispose()
