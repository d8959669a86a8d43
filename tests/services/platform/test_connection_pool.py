"""The services' database pool keeps the connections a burst opened.

SQLAlchemy closes an overflow connection when it is returned to a full pool,
so every burst past the base size started PostgreSQL backends and ended them
again: a fork and an authentication per connection, on the 2 cores the
service shares (issue 13 measured 0.36 cores it could attribute to nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
from sqlalchemy import text

from services.platform.database import asyncpg_dsn, create_engine, pooled_driver
from services.platform.outages import is_dependency_outage


async def test_a_second_burst_reuses_the_first_bursts_connections(
    make_database: Callable[[str], str],
) -> None:
    pool = 2
    engine = create_engine(make_database("pool_churn"), pool_size=pool)
    try:

        async def burst() -> set[int]:
            """As many callers at once as the pool may open: 2 x pool_size."""
            everyone_in = asyncio.Barrier(2 * pool)

            async def backend() -> int:
                async with engine.connect() as conn:
                    pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                    await everyone_in.wait()
                    return int(pid)

            async with asyncio.timeout(10):
                return set(await asyncio.gather(*(backend() for _ in range(2 * pool))))

        first = await burst()
        assert len(first) == 2 * pool
        assert await burst() == first, "the pool closed connections and opened new ones"
    finally:
        await engine.dispose()


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
