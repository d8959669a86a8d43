"""A real deadlock, with the service's transaction as PostgreSQL's victim, is run
again by retrying_conflicts instead of reaching the caller; other errors are not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.platform.conflicts import retrying_conflicts
from services.platform.database import sqlalchemy_url

LOCK = "SELECT pg_advisory_xact_lock(:k)"
WAITING = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"


@pytest.fixture
async def engine(make_database: Callable[[str], str]) -> AsyncIterator[AsyncEngine]:
    url = await asyncio.to_thread(make_database, "conflicts")
    engine = create_async_engine(sqlalchemy_url(url))
    yield engine
    await engine.dispose()


async def waiting(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(WAITING))).scalar_one())


async def test_a_deadlock_victim_is_run_again(engine: AsyncEngine) -> None:
    attempts = 0
    helper_holds = asyncio.Event()
    release_helper = asyncio.Event()

    async def helper() -> None:
        async with engine.begin() as conn:
            await conn.execute(text(LOCK), {"k": 2})
            helper_holds.set()
            await release_helper.wait()
            await conn.execute(text(LOCK), {"k": 1})  # closes the cycle

    async def transaction() -> str:
        nonlocal attempts
        attempts += 1
        async with engine.begin() as conn:
            await conn.execute(text(LOCK), {"k": 1})
            if attempts == 1:
                # Blocks first, so its backend finds the cycle first and is aborted.
                blocked = asyncio.create_task(conn.execute(text(LOCK), {"k": 2}))
                for _ in range(1000):  # until PostgreSQL shows it waiting
                    if await waiting(engine) >= 1:
                        break
                    await asyncio.sleep(0.01)
                release_helper.set()
                await blocked
            else:
                await conn.execute(text(LOCK), {"k": 2})
        return "done"

    helping = asyncio.create_task(helper())
    await helper_holds.wait()
    assert await retrying_conflicts(transaction, "test") == "done"
    await helping
    assert attempts == 2


async def test_other_errors_are_not_retried() -> None:
    attempts = 0

    async def transaction() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("not a conflict")

    with pytest.raises(ValueError, match="not a conflict"):
        await retrying_conflicts(transaction, "test")
    assert attempts == 1
