"""Reconciliation: lancamentos' per-day sums against the consolidated totals.

The RPC and the CLI both call `Reconciler.reconcile`.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado import store
from services.consolidado.drifts import ReconcileReport, find_drifts
from services.consolidado.lancamentos_client import LancamentosLedger
from services.consolidado.queries import DayRange


class Reconciler:
    def __init__(self, engine: AsyncEngine, lancamentos: LancamentosLedger) -> None:
        self._engine = engine
        self._lancamentos = lancamentos

    async def reconcile(self, query: DayRange) -> ReconcileReport:
        # Ours first: every entry counted here was committed in lancamentos
        # before, so its later summary includes it; what lancamentos has more
        # is loss or delivery lag (see undelivered_count), never the reverse.
        async with self._engine.connect() as conn:
            actual = await store.day_sums(conn, query.merchant_id, query.start, query.end)
        expected = await self._lancamentos.sums(query)
        return ReconcileReport(
            drifts=find_drifts(expected.days, actual),
            undelivered_count=expected.undelivered_count,
            days_checked=query.days,
            parked_count=expected.parked_count,
        )
