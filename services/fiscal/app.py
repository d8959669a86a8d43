"""Wires the fiscal process: engine, service, server, dispatcher to lancamentos."""

from __future__ import annotations

import asyncio
from pathlib import Path
from zoneinfo import ZoneInfo

from fiscal.v1 import fiscal_pb2_grpc as pb_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from services.fiscal.access_rules import RULES
from services.fiscal.delivery import LancamentosDelivery
from services.fiscal.servicer import FiscalServicer
from services.fiscal.settings import FiscalSettings
from services.fiscal.store import NOTIFY_CHANNEL
from services.fiscal.use_cases import FiscalService, Policy
from services.fiscal.xml_input import Limits
from services.platform import database
from services.platform.grpc_server import GrpcServer, Registrar
from services.platform.guard import guard_of
from services.platform.migrations import SchemaCheck
from services.platform.outbox.dispatcher import OutboxDispatcher
from services.platform.outbox.notifier import CommitNotifier
from services.platform.tracing import configure_tracing

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SERVICE_NAME = "fiscal.v1.FiscalService"


class FiscalApp:
    """Everything one fiscal process runs; `start`/`stop` in that order."""

    def __init__(self, settings: FiscalSettings, *, serve: bool, dispatch: bool) -> None:
        self.settings = settings
        self.tracing = configure_tracing(settings, "fiscal")
        self.engine: AsyncEngine = database.create_engine(
            settings.database_url, pool_size=settings.database_pool_size, pool_name="fiscal"
        )
        self.notifier = CommitNotifier(settings.database_url, NOTIFY_CHANNEL)
        policy = Policy(
            timezone=ZoneInfo(settings.business_timezone),
            limits=Limits(max_bytes=settings.fiscal_max_document_bytes),
            trusted_cas=settings.fiscal_trusted_cas_file,
            require_trusted_signature=settings.fiscal_require_trusted_signature,
            store_documents=settings.fiscal_store_documents,
        )
        self.service = FiscalService(self.engine, policy)
        schema = SchemaCheck.of(MIGRATIONS)
        registrars: list[Registrar] = []
        if serve:
            servicer = FiscalServicer(self.service, self.engine)
            add_servicer = pb_grpc.add_FiscalServiceServicer_to_server
            registrars.append(lambda server: add_servicer(servicer, server))
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
                LancamentosDelivery(settings, self.tracing),
                settings,
                tracing=self.tracing,
            )
            if dispatch
            else None
        )

    async def start(self) -> None:
        self.notifier.start()
        self.service.start()
        await self.server.start()
        if self.dispatcher is not None:
            self.dispatcher.start()

    async def stop(self) -> None:
        """No new RPCs, in-flight ones finish, the dispatcher delivers what it can."""
        await self.server.stop(self.settings.shutdown_grace_seconds)
        await self.service.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop(self.settings.dispatch_drain_seconds)
        await self.notifier.stop()
        await self.engine.dispose()
        await asyncio.to_thread(self.tracing.shutdown)
