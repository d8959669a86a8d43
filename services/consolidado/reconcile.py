"""Reconciliation: lancamentos' per-day sums against the consolidated totals.

The RPC and the CLI both call `Reconciler.reconcile`.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import grpc
from lancamentos.v1 import lancamentos_pb2 as lpb
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado import store
from services.consolidado.drifts import DaySums, ReconcileReport, find_drifts
from services.consolidado.lancamentos_client import unreachable
from services.consolidado.requests import DayRange

if TYPE_CHECKING:
    from lancamentos.v1.lancamentos_pb2_grpc import LancamentosServiceAsyncStub


class Reconciler:
    def __init__(
        self, engine: AsyncEngine, lancamentos: LancamentosServiceAsyncStub, *, timeout: float
    ) -> None:
        self._engine = engine
        self._lancamentos = lancamentos
        self._timeout = timeout

    async def reconcile(self, query: DayRange) -> ReconcileReport:
        # Ours first: every entry counted here was committed in lancamentos
        # before, so its later summary includes it; what lancamentos has more
        # is loss or delivery lag (see undelivered_count), never the reverse.
        async with self._engine.connect() as conn:
            actual = await store.day_sums(conn, query.merchant_id, query.start, query.end)
        summary = await self._summarize(query)
        expected = {
            date.fromisoformat(day.date): DaySums(
                day.credits_cents, day.debits_cents, day.lancamentos_count
            )
            for day in summary.days
        }
        return ReconcileReport(
            drifts=find_drifts(expected, actual),
            undelivered_count=summary.undelivered_count,
            days_checked=query.days,
        )

    async def _summarize(self, query: DayRange) -> lpb.SummarizeLancamentosResponse:
        request = lpb.SummarizeLancamentosRequest(
            merchant_id=query.merchant_id,
            from_date=query.start.isoformat(),
            to_date=query.end.isoformat(),
        )
        try:
            return await self._lancamentos.SummarizeLancamentos(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            outage = unreachable(error, "summarize its entries")
            if outage is not None:
                raise outage from error
            raise
