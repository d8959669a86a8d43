"""Wires the consolidado process: engine, cache, use cases, servicers, server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

from consolidado.v1 import consolidado_pb2 as pb
from consolidado.v1 import consolidado_pb2_grpc as pb_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from services.consolidado.access_rules import RULES
from services.consolidado.cache import BalanceCache
from services.consolidado.conversions import ProtoBalances
from services.consolidado.ingest import Ingestor
from services.consolidado.lancamentos_client import (
    LancamentosLedger,
    lancamentos_stub,
    open_channel,
)
from services.consolidado.reader import BalanceReader
from services.consolidado.reconcile import Reconciler
from services.consolidado.servicer import (
    BeforeApply,
    ConsolidadoIngestServicer,
    ConsolidadoServicer,
)
from services.consolidado.settings import ConsolidadoSettings
from services.platform import database
from services.platform.grpc_server import GrpcServer
from services.platform.guard import guard_of
from services.platform.migrations import SchemaCheck
from services.platform.tracing import Tracing, configure_tracing
from services.platform.workload_identity import identity_interceptors

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SERVICE_NAMES = [
    pb.DESCRIPTOR.services_by_name["ConsolidadoService"].full_name,
    pb.DESCRIPTOR.services_by_name["ConsolidadoIngestService"].full_name,
]


def build_server(
    settings: ConsolidadoSettings,
    balances: ConsolidadoServicer,
    ingest: ConsolidadoIngestServicer,
    readiness_probe: Callable[[], Awaitable[None]],
    tracing: Tracing | None = None,
) -> GrpcServer:
    """Both services on one server; readiness is the migrated database (Redis is optional)."""
    return GrpcServer(
        host=settings.grpc_host,
        port=settings.grpc_port,
        service_names=SERVICE_NAMES,
        registrars=[
            lambda server: pb_grpc.add_ConsolidadoServiceServicer_to_server(balances, server),
            lambda server: pb_grpc.add_ConsolidadoIngestServiceServicer_to_server(ingest, server),
        ],
        readiness_probe=readiness_probe,
        probe_interval=settings.health_probe_interval_seconds,
        metrics_port=settings.metrics_port,
        guard=guard_of(settings, RULES),
        tracing=tracing,
    )


class ConsolidadoApp:
    """Everything one consolidado process runs. Construct it inside a running
    event loop; `start`/`stop`, or `async with`."""

    def __init__(
        self,
        settings: ConsolidadoSettings,
        *,
        serve: bool = True,
        before_apply: BeforeApply | None = None,
    ) -> None:
        self.settings = settings
        self.tracing = configure_tracing(settings, "consolidado")
        self.engine: AsyncEngine = database.create_engine(
            settings.database_url, pool_size=settings.database_pool_size, pool_name="consolidado"
        )
        self.cache = BalanceCache.from_settings(settings)
        # Lazy: no connection is made until reconcile or rebuild needs one.
        self.lancamentos_channel = open_channel(
            settings.require("lancamentos_target"),
            [*self.tracing.client_interceptors(), *identity_interceptors(settings)],
        )
        self.lancamentos = LancamentosLedger(
            lancamentos_stub(self.lancamentos_channel),
            timeout=settings.lancamentos_timeout_seconds,
        )
        self.reader = BalanceReader(self.engine, self.cache, ProtoBalances())
        self.ingestor = Ingestor(self.engine)
        self.reconciler = Reconciler(self.engine, self.lancamentos)
        self.server: GrpcServer | None = None
        if serve:
            schema = SchemaCheck.of(MIGRATIONS)
            self.server = build_server(
                settings,
                ConsolidadoServicer(self.reader, self.engine),
                ConsolidadoIngestServicer(
                    self.ingestor, self.reconciler, before_apply=before_apply
                ),
                readiness_probe=lambda: schema(self.engine),
                tracing=self.tracing,
            )

    async def start(self) -> None:
        if self.server is not None:
            await self.server.start()

    async def stop(self) -> None:
        """No new RPCs, in-flight ones finish, then the clients close."""
        if self.server is not None:
            await self.server.stop(self.settings.shutdown_grace_seconds)
        await self.lancamentos_channel.close(grace=None)
        await self.cache.close()
        await self.engine.dispose()
        await asyncio.to_thread(self.tracing.shutdown)  # joins the export thread

    async def __aenter__(self) -> ConsolidadoApp:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
