"""Applying delivered entries: exactly once in effect; the same statement bumps
the merchants' balance versions, which is all the cache needs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado import store
from services.consolidado.entries import ApplyResult, IngestEntry
from services.platform.conflicts import retrying_conflicts
from services.platform.refusals import database_refusal, unstorable


class Ingestor:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def apply(self, entries: Sequence[IngestEntry]) -> ApplyResult:
        """Applies the entries not applied before; a repeated one counts once."""
        unique = sorted(
            {e.lancamento_id: e for e in entries}.values(), key=lambda e: e.lancamento_id
        )
        if not unique:
            return ApplyResult(0, len(entries), frozenset())
        applied, merchants = await self._apply_with_retry(unique)
        return ApplyResult(applied, len(entries) - applied, merchants)

    async def _apply_with_retry(self, entries: list[IngestEntry]) -> tuple[int, frozenset[str]]:
        async def transaction() -> tuple[int, frozenset[str]]:
            async with self._engine.begin() as conn:
                return await store.apply_entries(conn, entries)

        try:
            return await retrying_conflicts(transaction, "ingest")
        except Exception as exc:
            # The dispatcher parks what is refused for good instead of retrying it.
            refusal = database_refusal(exc)
            if refusal is None:
                raise
            raise unstorable(refusal, "lancamentos", "this batch") from exc
