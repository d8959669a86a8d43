"""Async SQLAlchemy engine creation and the URL forms each driver wants."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from prometheus_client import Gauge
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

POOL_IN_USE = Gauge(
    "caixa_db_pool_connections_in_use", "Database connections checked out now", ["pool"]
)
POOL_LIMIT = Gauge("caixa_db_pool_connections_limit", "Connections the pool may open", ["pool"])


def sqlalchemy_url(url: str) -> str:
    """`postgresql://…` → `postgresql+asyncpg://…` (SQLAlchemy's async dialect)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """The plain libpq-style URL asyncpg takes for its own connections (LISTEN)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int, pool_name: str | None = None) -> AsyncEngine:
    """Up to 2 x `pool_size` connections: `pool_size` kept, the rest for bursts.
    `pool_name`: export the pool's usage under that label (one per process role)."""
    engine = create_async_engine(
        sqlalchemy_url(url),
        # Overflow connections are closed on return, so a burst's backends end
        # with it. Keeping them all (pool_size=2n, max_overflow=0) measured no
        # faster, and pinned every process's peak: five processes of the bench
        # then held more than this machine's max_connections of 100.
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        # No pre-ping: a round trip per checkout costs the hot path. A
        # connection killed by a database restart fails its statement, SQLAlchemy
        # invalidates the pool, the caller gets a retryable UNAVAILABLE and the
        # next checkout reconnects: that is how the service heals.
        connect_args={"timeout": 5, "command_timeout": 30},
    )
    pool = engine.sync_engine.pool
    if pool_name is not None and isinstance(pool, QueuePool):
        # Read at scrape time: no bookkeeping on the hot path.
        POOL_IN_USE.labels(pool_name).set_function(pool.checkedout)
        POOL_LIMIT.labels(pool_name).set(2 * pool_size)
    return engine


async def driver_connection(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy one, for the hot path that
    SQLAlchemy's statement layer would make CPU-bound."""
    fairy = await conn.get_raw_connection()
    return fairy.driver_connection


@contextlib.asynccontextmanager
async def pooled_driver(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection's asyncpg connection, for the hot paths. SQLAlchemy
    discards a connection that dies under its own statements only: one that
    died under the driver's is invalidated here, or it would go back to the
    pool and fail every later caller."""
    async with engine.connect() as conn:
        driver = await driver_connection(conn)
        try:
            yield driver
        except BaseException:
            if driver.is_closed():
                await conn.invalidate()
            raise
