"""Which exceptions mean "a dependency is down" (retryable) rather than a bug."""

from __future__ import annotations

import asyncpg
import redis.exceptions
import sqlalchemy.exc

from services.domain.errors import Unavailable

_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    OSError,
    Unavailable,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.TooManyConnectionsError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sqlalchemy.exc.TimeoutError,
)


def is_dependency_outage(exc: BaseException) -> bool:
    """True when `exc`, or what it wraps, says a database or cache is unreachable."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _OUTAGE_TYPES):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        orig = getattr(current, "orig", None)
        # SQLAlchemy's asyncpg adapter wraps the driver error one level down.
        if isinstance(orig, BaseException) and orig is not current and is_dependency_outage(orig):
            return True
        current = current.__cause__ or current.__context__
    return False
