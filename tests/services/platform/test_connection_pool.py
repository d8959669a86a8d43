"""The services' database pool keeps the connections a burst opened.

SQLAlchemy closes an overflow connection when it is returned to a full pool,
so every burst past the base size started PostgreSQL backends and ended them
again: a fork and an authentication per connection, on the 2 cores the
service shares (issue 13 measured 0.36 cores it could attribute to nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import text

from services.platform.database import create_engine


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
