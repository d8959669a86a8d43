"""Applying delivered entries: exactly once in effect; the same statement bumps
the merchants' balance versions, which is all the cache needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado import store
from services.consolidado.entries import ApplyResult, IngestEntry
from services.platform.conflicts import retrying_conflicts
from services.platform.refusals import database_refusal, unstorable

# From an entry's commit in lancamentos (its created_at) to its apply here: what
# a merchant waits to see it in the balance. Redeliveries are counted again.
LAG = Histogram(
    "caixa_consolidation_lag_seconds",
    "Time from an entry's booking in lancamentos to its apply in consolidado",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60, 120, 300, 900, 3600),
)


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
        now = datetime.now(UTC)
        for entry in unique:
            # Clocks of two hosts: a skew must not make a lag negative.
            LAG.observe(max(0.0, (now - entry.created_at).total_seconds()))
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
