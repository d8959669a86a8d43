"""Rebuilds the consolidated data from lancamentos' change feed.

Opens the feed, and only once lancamentos answers deletes what was consolidated
(for one merchant, or all) and applies every entry of the feed through the
same apply as ingest. Safe while ingest runs: the feed is gap-free in commit
order from sequence 0, and everything it brings is applied after the delete,
so an entry delivered before the delete comes back through the feed, and one
delivered after stays (the feed's copy is a duplicate). Reads during a
rebuild see partial balances; if it fails midway, run it again.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado import store
from services.consolidado.cache import BalanceCache
from services.consolidado.entries import IngestEntry
from services.consolidado.ingest import Ingestor
from services.consolidado.lancamentos_client import LancamentosLedger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RebuildReport:
    applied: int
    duplicates: int
    merchants: frozenset[str]


async def rebuild(
    engine: AsyncEngine,
    cache: BalanceCache,
    lancamentos: LancamentosLedger,
    *,
    merchant_id: str | None = None,
    batch_size: int = 1000,
) -> RebuildReport:
    """Replays `merchant_id`'s entries (all when None); see the module doc."""
    ingestor = Ingestor(engine, cache)
    async with contextlib.aclosing(lancamentos.feed(merchant_id, batch_size)) as feed:
        # Nothing is deleted before lancamentos has answered.
        first = await anext(feed, None)

        async with engine.begin() as conn:
            forgotten = (
                {merchant_id}
                if merchant_id is not None
                else await store.consolidated_merchants(conn)
            )
            await store.delete_consolidated(conn, merchant_id)
        await cache.invalidate(forgotten)
        log.info("consolidated data deleted; replaying the feed", extra={"merchant": merchant_id})

        applied = duplicates = 0
        merchants: set[str] = set()

        async def apply(batch: list[IngestEntry]) -> None:
            nonlocal applied, duplicates
            result = await ingestor.apply(batch)
            applied += result.applied
            duplicates += result.duplicates
            merchants.update(result.merchants)

        if first is not None:
            await apply(first)
        async for batch in feed:
            await apply(batch)
    # Merchants whose totals are now gone, or were rebuilt by the last batches.
    await cache.invalidate(forgotten | merchants)
    log.info(
        "rebuild finished",
        extra={"merchant": merchant_id, "applied": applied, "duplicates": duplicates},
    )
    return RebuildReport(applied, duplicates, frozenset(merchants))
