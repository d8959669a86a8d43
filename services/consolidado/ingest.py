"""Applying delivered entries: exactly once in effect, then cache invalidation."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado import store
from services.consolidado.cache import BalanceCache
from services.consolidado.entries import ApplyResult, IngestEntry

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
_RETRY_BASE_SECONDS = 0.01
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock


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


class Ingestor:
    def __init__(self, engine: AsyncEngine, cache: BalanceCache) -> None:
        self._engine = engine
        self._cache = cache

    async def apply(self, entries: Sequence[IngestEntry]) -> ApplyResult:
        """Applies the entries not applied before; a repeated one counts once."""
        unique = sorted(
            {e.lancamento_id: e for e in entries}.values(), key=lambda e: e.lancamento_id
        )
        if not unique:
            return ApplyResult(0, len(entries), frozenset())
        applied, merchants = await self._apply_with_retry(unique)
        # After the commit, never before: see services.consolidado.cache.
        await self._cache.invalidate(merchants)
        return ApplyResult(applied, len(entries) - applied, merchants)

    async def _apply_with_retry(self, entries: list[IngestEntry]) -> tuple[int, frozenset[str]]:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self._engine.begin() as conn:
                    return await store.apply_entries(conn, entries)
            except Exception as exc:
                if attempt == MAX_ATTEMPTS or not is_transient_conflict(exc):
                    raise
                delay = random.uniform(0, _RETRY_BASE_SECONDS * 2**attempt)
                log.info(
                    "ingest conflict; retrying",
                    extra={"attempt": attempt, "delay_seconds": round(delay, 4)},
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")
