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
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado import store
from services.consolidado.cache import BalanceCache
from services.consolidado.ingest import Ingestor
from services.consolidado.lancamentos_client import unreachable
from services.consolidado.requests import ingest_batch

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RebuildReport:
    applied: int
    duplicates: int
    merchants: frozenset[str]


async def rebuild(
    engine: AsyncEngine,
    cache: BalanceCache,
    lancamentos: LancamentosServiceAsyncStub,
    *,
    merchant_id: str | None = None,
    batch_size: int = 1000,
) -> RebuildReport:
    """Replays `merchant_id`'s entries (all when None); see the module doc."""
    call = lancamentos.StreamLancamentos(
        lpb.StreamLancamentosRequest(after_sequence=0, merchant_id=merchant_id or "")
    )
    try:
        return await _replay(
            engine, cache, call.__aiter__(), merchant_id=merchant_id, batch_size=batch_size
        )
    finally:
        call.cancel()  # a no-op once the feed has ended


async def _replay(
    engine: AsyncEngine,
    cache: BalanceCache,
    feed: AsyncIterator[lpb.Lancamento],
    *,
    merchant_id: str | None,
    batch_size: int,
) -> RebuildReport:
    ingestor = Ingestor(engine, cache)
    with _unreachable_as_unavailable():
        # Nothing is deleted before lancamentos has answered.
        first = await anext(feed, None)

    async with engine.begin() as conn:
        forgotten = (
            {merchant_id} if merchant_id is not None else await store.consolidated_merchants(conn)
        )
        await store.delete_consolidated(conn, merchant_id)
    await cache.invalidate(forgotten)
    log.info("consolidated data deleted; replaying the feed", extra={"merchant": merchant_id})

    applied = duplicates = 0
    merchants: set[str] = set()

    async def apply(batch: Sequence[lpb.Lancamento]) -> None:
        nonlocal applied, duplicates
        result = await ingestor.apply(ingest_batch(batch))
        applied += result.applied
        duplicates += result.duplicates
        merchants.update(result.merchants)

    batch: list[lpb.Lancamento] = [] if first is None else [first]
    with _unreachable_as_unavailable():
        async for entry in feed:
            batch.append(entry)
            if len(batch) >= batch_size:
                await apply(batch)
                batch = []
    if batch:
        await apply(batch)
    # Merchants whose totals are now gone, or were rebuilt by the last batches.
    await cache.invalidate(forgotten | merchants)
    log.info(
        "rebuild finished",
        extra={"merchant": merchant_id, "applied": applied, "duplicates": duplicates},
    )
    return RebuildReport(applied, duplicates, frozenset(merchants))


@contextlib.contextmanager
def _unreachable_as_unavailable() -> Iterator[None]:
    try:
        yield
    except grpc.aio.AioRpcError as error:
        outage = unreachable(error, "stream its entries")
        if outage is not None:
            raise outage from error
        raise
