"""Wires the lancamentos process: engine, notifier, service, server, dispatcher."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lancamentos.v1 import lancamentos_pb2_grpc as pb_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from services.lancamentos.access_rules import RULES
from services.lancamentos.outbox.delivery import ConsolidadoDelivery
from services.lancamentos.servicer import LancamentosServicer
from services.lancamentos.settings import LancamentosSettings
from services.lancamentos.store import NOTIFY_CHANNEL
from services.lancamentos.use_cases import LancamentosService
from services.platform import database
from services.platform.grpc_server import GrpcServer, Registrar
from services.platform.guard import guard_of
from services.platform.migrations import SchemaCheck
from services.platform.outbox.dispatcher import OutboxDispatcher
from services.platform.outbox.notifier import CommitNotifier
from services.platform.tracing import configure_tracing

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SERVICE_NAME = "lancamentos.v1.LancamentosService"


class LancamentosApp:
    """Everything one lancamentos process runs; `start`/`stop` in that order."""

    def __init__(self, settings: LancamentosSettings, *, serve: bool, dispatch: bool) -> None:
        self.settings = settings
        self.tracing = configure_tracing(settings, "lancamentos")
        self.engine: AsyncEngine = database.create_engine(
            settings.database_url, pool_size=settings.database_pool_size, pool_name="lancamentos"
        )
        self.notifier = CommitNotifier(settings.database_url, NOTIFY_CHANNEL)
        self.service = LancamentosService(
            self.engine,
            self.notifier,
            timezone=settings.business_timezone,
            group_commit_max_batch=settings.group_commit_max_batch,
        )
        schema = SchemaCheck.of(MIGRATIONS)
        registrars: list[Registrar] = []
        if serve:
            servicer = LancamentosServicer(
                self.service, self.engine, import_chunk_size=settings.import_chunk_size
            )
            add_servicer = pb_grpc.add_LancamentosServiceServicer_to_server
            registrars.append(lambda server: add_servicer(servicer, server))
        # A dispatch-only process serves health too: kubelet probes it like the others.
        self.server = GrpcServer(
            host=settings.grpc_host,
            port=settings.grpc_port,
            service_names=[SERVICE_NAME] if serve else [],
            registrars=registrars,
            readiness_probe=lambda: schema(self.engine),
            probe_interval=settings.health_probe_interval_seconds,
            metrics_port=settings.metrics_port,
            guard=guard_of(settings, RULES),
            tracing=self.tracing,
        )
        self.dispatcher = (
            OutboxDispatcher(
                self.engine,
                self.notifier,
                ConsolidadoDelivery(settings, self.tracing),
                settings,
                tracing=self.tracing,
            )
            if dispatch
            else None
        )

    async def start(self) -> None:
        self.notifier.start()
        await self.service.start()
        await self.server.start()
        if self.dispatcher is not None:
            self.dispatcher.start()

    async def stop(self) -> None:
        """Drains in dependency order: no new RPCs, in-flight ones finish, the
        group commit flushes, the dispatcher delivers what it can."""
        await self.server.stop(self.settings.shutdown_grace_seconds)
        await self.service.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop(self.settings.dispatch_drain_seconds)
        await self.notifier.stop()
        await self.engine.dispose()
        await asyncio.to_thread(self.tracing.shutdown)  # joins the export thread
