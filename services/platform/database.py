"""Async SQLAlchemy engine creation and the URL forms each driver wants."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def sqlalchemy_url(url: str) -> str:
    """`postgresql://…` → `postgresql+asyncpg://…` (SQLAlchemy's async dialect)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """The plain libpq-style URL asyncpg takes for its own connections (LISTEN)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        # No pre-ping: a round trip per checkout costs the hot path. A
        # connection killed by a database restart fails its statement, SQLAlchemy
        # invalidates the pool, the caller gets a retryable UNAVAILABLE and the
        # next checkout reconnects: that is how the service heals.
        connect_args={"timeout": 5, "command_timeout": 30},
    )
