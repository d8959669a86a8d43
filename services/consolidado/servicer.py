"""consolidado.v1 services over gRPC: requests in, use cases, messages out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from audit.v1 import audit_pb2 as audit_pb
from consolidado.v1 import consolidado_pb2 as pb
from consolidado.v1 import consolidado_pb2_grpc as pb_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado import requests
from services.consolidado.conversions import reconcile_response
from services.consolidado.ingest import Ingestor
from services.consolidado.reader import BalanceReader
from services.consolidado.reconcile import Reconciler
from services.platform.audit_api import list_audit_records

Context = grpc.aio.ServicerContext[Any, Any]
# Test hook: runs after validation, before the transaction (to delay or fail ingest).
BeforeApply = Callable[[], Awaitable[None]]


class ConsolidadoServicer(pb_grpc.ConsolidadoServiceServicer):
    def __init__(
        self, reader: BalanceReader[pb.ListDailyBalancesResponse], engine: AsyncEngine
    ) -> None:
        self._reader = reader
        self._engine = engine

    async def GetDailyBalance(
        self, request: pb.GetDailyBalanceRequest, context: Context
    ) -> pb.DailyBalance:
        response = await self._reader.balances(requests.single_day(request))
        return response.daily_balances[0]

    async def ListDailyBalances(
        self, request: pb.ListDailyBalancesRequest, context: Context
    ) -> pb.ListDailyBalancesResponse:
        query = requests.day_range(request.merchant_id, request.from_date, request.to_date)
        return await self._reader.balances(query)

    async def ListAuditRecords(
        self, request: audit_pb.ListAuditRecordsRequest, context: Context
    ) -> audit_pb.ListAuditRecordsResponse:
        return await list_audit_records(self._engine, request)


class ConsolidadoIngestServicer(pb_grpc.ConsolidadoIngestServiceServicer):
    def __init__(
        self,
        ingestor: Ingestor,
        reconciler: Reconciler,
        *,
        before_apply: BeforeApply | None = None,
    ) -> None:
        self._ingestor = ingestor
        self._reconciler = reconciler
        self._before_apply = before_apply

    async def ApplyLancamentos(
        self, request: pb.ApplyLancamentosRequest, context: Context
    ) -> pb.ApplyLancamentosResponse:
        entries = requests.ingest_batch(request.lancamentos)
        if self._before_apply is not None:
            await self._before_apply()
        result = await self._ingestor.apply(entries)
        return pb.ApplyLancamentosResponse(
            applied_count=result.applied, duplicate_count=result.duplicates
        )

    async def Reconcile(
        self, request: pb.ReconcileRequest, context: Context
    ) -> pb.ReconcileResponse:
        query = requests.day_range(request.merchant_id, request.from_date, request.to_date)
        return reconcile_response(await self._reconciler.reconcile(query))
