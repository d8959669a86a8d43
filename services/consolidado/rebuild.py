"""Rebuilds the consolidated data from lancamentos' change feed, safely while
ingest runs and readers read.

The feed (gap-free in commit order from sequence 0) is applied into shadow
copies of the tables, through the same apply as ingest; live data is untouched
meanwhile. Then one transaction swaps the shadow in (see rebuild_store.swap): it
holds ingest off, first copies into the shadow what ingest applied since the
feed opened that the feed did not bring, then replaces the live rows and bumps
the merchants' balance versions. What live held before and lancamentos never
had is forgotten.
Readers see the old totals until that commit and the rebuilt ones after it. An
entry is never lost: it is in the feed, or it reached the live tables before the
swap (and is copied), or it is still in lancamentos' outbox (and arrives after).
If a rebuild fails midway nothing live changed: run it again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado import rebuild_store, store
from services.consolidado.entries import IngestEntry
from services.consolidado.lancamentos_client import LancamentosLedger
from services.domain.errors import FailedPrecondition
from services.platform import audit
from services.platform.auth import ALL_MERCHANTS

log = logging.getLogger(__name__)

# A test's way into the interleaving: awaited after each feed batch is applied
# ("batch") and just before the swap ("swap").
Hook = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class RebuildReport:
    applied: int
    duplicates: int
    merchants: frozenset[str]


async def _no_hook(step: str) -> None:
    return None


async def rebuild(
    engine: AsyncEngine,
    lancamentos: LancamentosLedger,
    *,
    merchant_id: str | None = None,
    batch_size: int = 1000,
    hook: Hook = _no_hook,
    actor: audit.Actor | None = None,
) -> RebuildReport:
    """Replays `merchant_id`'s entries (all when None); see the module doc.
    Audited as `actor`, by default the operator running the command."""
    actor = actor or audit.operator("caixa-consolidado rebuild")
    async with engine.connect() as lock:
        if not await rebuild_store.try_lock_rebuild(lock):
            raise FailedPrecondition("another rebuild is running; wait for it to finish")
        await lock.commit()
        try:
            return await _rebuild(
                engine, lancamentos, merchant_id, batch_size, hook=hook, actor=actor
            )
        finally:
            async with engine.begin() as conn:
                await rebuild_store.drop_shadow(conn)
            await rebuild_store.unlock_rebuild(lock)
            await lock.commit()


async def _rebuild(
    engine: AsyncEngine,
    lancamentos: LancamentosLedger,
    merchant_id: str | None,
    batch_size: int,
    *,
    hook: Hook,
    actor: audit.Actor,
) -> RebuildReport:
    async with engine.begin() as conn:
        await rebuild_store.create_shadow(conn)
        # Before the feed opens: what is applied from now on may be too late for it.
        started = await rebuild_store.database_now(conn)
    applied = duplicates = 0
    async with contextlib.aclosing(lancamentos.feed(merchant_id, batch_size)) as feed:
        async for batch in feed:
            applied += await _apply_to_shadow(engine, batch)
            duplicates += len(batch)
            await hook("batch")
    duplicates -= applied
    await hook("swap")
    async with engine.begin() as conn:
        merchants = await rebuild_store.swap(conn, merchant_id, started=started)
        # Audited with the swap it records: under "*" when it rebuilt every merchant.
        outcome = f"rebuilt {applied} entries of {len(merchants)} merchants"
        record = audit.Mutation(merchant_id or ALL_MERCHANTS, "", [], outcome, actor)
        await audit.append(conn, [record])
    log.info(
        "rebuild finished",
        extra={"merchant": merchant_id, "applied": applied, "duplicates": duplicates},
    )
    return RebuildReport(applied, duplicates, merchants)


async def _apply_to_shadow(engine: AsyncEngine, batch: list[IngestEntry]) -> int:
    unique = sorted({e.lancamento_id: e for e in batch}.values(), key=lambda e: e.lancamento_id)
    async with engine.begin() as conn:
        count, _ = await store.apply_entries(conn, unique, rebuild_store.SHADOW)
    return count
