"""The local stack for tests: the plan `make run` uses (tooling.stack), brought up in
the same order, with the services in-process on the test's event loop (so a test
can hold consolidado's ingest, or stop a replica) and every port a free one."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mesh.policy import LocalTraces
from mesh.render.bundle import LocalEnvoy
from services.platform.database import sqlalchemy_url
from services.platform.outbox.dispatcher import OutboxDispatcher
from tests.support.paths import MESH_SOURCES
from tests.support.services import Databases, Mesh, truncate
from tooling.devstack.envoy import stats
from tooling.devstack.mtls import mtls_sets
from tooling.devstack.processes import ServerProcess
from tooling.devstack.trace_receiver import TraceReceiver
from tooling.stack.bring_up import bring_up
from tooling.stack.envoys import start_all, stop_all, wait_membership
from tooling.stack.plan import ServicePlan, StackPlan, free_port_sets

# The consolidado upstream's policy, for tests' `--set` overrides.
CONSOLIDADO = "mesh.upstreams.consolidado"


@dataclass(frozen=True)
class LocalStack:
    """One running local mesh: the gateway, the dispatcher's egress, the services."""

    plan: StackPlan
    mesh: Mesh
    consolidado_engine: AsyncEngine
    envoys: dict[str, ServerProcess]
    traces: TraceReceiver | None  # what every Envoy and service exports spans to

    @property
    def gateway_port(self) -> int:
        return self.plan.gateway.listen_port

    @property
    def gateway_admin(self) -> int:
        return self.plan.gateway.admin_port

    @property
    def egress_port(self) -> int:
        return self.plan.dispatcher_egress.listen_port

    @property
    def egress_admin(self) -> int:
        return self.plan.dispatcher_egress.admin_port

    @property
    def gateway_target(self) -> str:
        return f"127.0.0.1:{self.gateway_port}"

    grpc_target = gateway_target

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def egress_target(self) -> str:
        return f"127.0.0.1:{self.egress_port}"

    @property
    def config(self) -> dict[str, Any]:
        """The rendered bootstrap of the running gateway, for tests that start a variant."""
        return self.plan.gateway.config

    @property
    def dispatcher(self) -> OutboxDispatcher:
        dispatcher = self.mesh.lancamentos[0].dispatcher
        assert dispatcher is not None
        return dispatcher

    def stats(self, contains: str = "") -> dict[str, int]:
        return stats(self.gateway_admin, contains)

    async def gateway_stats(self, contains: str = "") -> dict[str, int]:
        return await asyncio.to_thread(stats, self.gateway_admin, contains)

    async def egress_stats(self, contains: str = "") -> dict[str, int]:
        return await asyncio.to_thread(stats, self.egress_admin, contains)

    async def wait_healthy(self, admin_port: int, cluster: str, hosts: int, within: float) -> None:
        """Until `admin_port`'s Envoy counts `hosts` healthy members of `cluster`."""
        await wait_membership(admin_port, {cluster: hosts}, within)


class InProcess:
    """The tests' launcher: services are apps of `mesh`, Envoys real processes."""

    def __init__(self, mesh: Mesh, out: Path) -> None:
        self.mesh = mesh
        self.out = out
        self.envoys: dict[str, ServerProcess] = {}
        self._pending: list[LocalEnvoy] = []
        self.traces: TraceReceiver | None = None

    async def start_trace_receiver(self, address: str, traces: LocalTraces) -> None:
        self.traces = TraceReceiver(address, traces.otlp_port, traces.query_port, 1000)
        self.traces.start()

    async def start_service(self, service: ServicePlan) -> None:
        if service.service == "consolidado":
            await self.mesh.start_consolidado(service.index)
        elif service.service == "fiscal":
            await self.mesh.start_fiscal(service.index, service.env["LANCAMENTOS_TARGET"])
        else:
            target = service.env["CONSOLIDADO_TARGET"]
            await self.mesh.add_lancamentos(serve=True, dispatch=True, consolidado_target=target)

    async def start_envoys(self, envoys: Sequence[LocalEnvoy]) -> None:
        self._pending.extend(envoys)

    async def settle(self) -> None:
        # The apps are ready once started; the Envoys start together here.
        pending, self._pending = self._pending, []
        self.envoys.update(await start_all(pending, self.out))

    def check(self) -> None:
        pass


def stack_mesh(plan: StackPlan, dbs: Databases, redis_url: str, prefix: str) -> Mesh:
    """The in-process services, on the plan's ports."""
    return Mesh(
        lancamentos_db=dbs.lancamentos,
        consolidado_db=dbs.consolidado,
        fiscal_db=dbs.fiscal,
        fiscal_ports=[replica.port for replica in plan.fiscal],
        redis_url=redis_url,
        key_prefix=f"{prefix}-{uuid.uuid4().hex[:8]}:bal",
        consolidado_ports=[replica.port for replica in plan.consolidado],
        lancamentos_port=plan.lancamentos.port,
        consolidados=[None] * len(plan.consolidado),
        tracing={k: v for k, v in plan.lancamentos.env.items() if k.startswith("OTEL_")},
    )


@contextlib.asynccontextmanager
async def local_stack(
    dbs: Databases,
    redis_url: str,
    out: Path,
    extra_sets: Sequence[str] = (),
    *,
    prefix: str,
    empty: bool = False,
) -> AsyncIterator[LocalStack]:
    """A running local mesh on free ports, mTLS between its sidecars as in `make run`;
    `empty` truncates the databases first."""
    if not MESH_SOURCES.descriptor.exists():
        raise RuntimeError(f"{MESH_SOURCES.descriptor} is missing: run `make proto` first")
    sets = [*free_port_sets(MESH_SOURCES), *mtls_sets(out), *extra_sets]
    plan = StackPlan.render(MESH_SOURCES, sets, openapi=False)
    mesh = stack_mesh(plan, dbs, redis_url, prefix)
    if empty:
        await truncate(mesh)
    engine = create_async_engine(sqlalchemy_url(dbs.consolidado))
    launcher = InProcess(mesh, out)
    try:
        await bring_up(plan, launcher, within=15)
        yield LocalStack(plan, mesh, engine, launcher.envoys, launcher.traces)
    finally:
        mesh.gate.open()
        await mesh.close()
        await asyncio.to_thread(stop_all, launcher.envoys)
        if launcher.traces is not None:
            await asyncio.to_thread(launcher.traces.stop)
        await engine.dispose()


StackFactory = Callable[[Sequence[str]], contextlib.AbstractAsyncContextManager[LocalStack]]
