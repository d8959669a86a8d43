"""Deadlocks and serialization failures: PostgreSQL aborts one transaction so the
others proceed, and running it again is the documented remedy. They are retried
inside the service, a bounded number of times, and never reach a caller."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
_RETRY_BASE_SECONDS = 0.01
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock

T = TypeVar("T")


def is_transient_conflict(exc: BaseException) -> bool:
    """A deadlock or serialization failure, possibly wrapped by SQLAlchemy."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current,
            asyncpg.exceptions.DeadlockDetectedError | asyncpg.exceptions.SerializationError,
        ):
            return True
        if getattr(current, "sqlstate", None) in _TRANSIENT_SQLSTATES:
            return True
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException) and orig is not current and is_transient_conflict(orig):
            return True
        current = current.__cause__ or current.__context__
    return False


async def retrying_conflicts(transaction: Callable[[], Awaitable[T]], what: str) -> T:
    """Runs `transaction` (a whole one: it must begin and end inside) again, with
    jittered backoff, while it fails with a transient conflict."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return await transaction()
        except Exception as exc:
            if attempt == MAX_ATTEMPTS or not is_transient_conflict(exc):
                raise
            delay = random.uniform(0, _RETRY_BASE_SECONDS * 2**attempt)
            log.info(
                f"{what}: transient conflict; retrying",
                extra={"attempt": attempt, "delay_seconds": round(delay, 4)},
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
