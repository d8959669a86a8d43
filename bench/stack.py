"""The processes under test: the local stack (lancamentos with its dispatcher, the
consolidado and fiscal replicas, the gateway and the sidecars) brought up by tooling.stack
on free loopback ports, over fresh databases."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from services.consolidado.app import MIGRATIONS as CONSOLIDADO_MIGRATIONS
from services.fiscal.app import MIGRATIONS as FISCAL_MIGRATIONS
from services.lancamentos.app import MIGRATIONS as LANCAMENTOS_MIGRATIONS
from services.platform.migrations import upgrade
from tooling.devstack.auth import CONSOLIDADO, DISPATCHER, FISCAL, StackAuth, gateway_jwt_sets
from tooling.devstack.infra import create_database, drop_database
from tooling.devstack.mtls import mtls_sets
from tooling.devstack.supervisor import Supervisor
from tooling.stack.bring_up import bring_up
from tooling.stack.plan import ServicePlan, StackPlan, free_port_sets
from tooling.stack.sources import MeshSources
from tooling.stack.supervised import Supervised

# The bench measures capacity: the reads' rate limit (a policy choice, 5,000/s
# by default) and the per-merchant one (500/s; the bench's one back-office token
# is one merchant to it) are lifted so they are not what gets measured.
NO_READ_LIMIT = [
    "mesh.upstreams.consolidado.routeClasses.reads.rateLimit.tokensPerSecond=1000000",
    "mesh.upstreams.consolidado.routeClasses.reads.rateLimit.burst=1000000",
    "mesh.gateway.merchantRateLimit.tokensPerSecond=1000000",
    "mesh.gateway.merchantRateLimit.burst=1000000",
]


@dataclass(frozen=True)
class Service:
    name: str
    address: str
    metrics: str  # host:port of its Prometheus /metrics


@dataclass
class Stack:
    admin_url: str
    redis_url: str
    workdir: Path
    sources: MeshSources
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    lancamentos_db: str = ""
    consolidado_db: str = ""
    fiscal_db: str = ""
    lancamentos: Service | None = None
    consolidado: list[Service] = field(default_factory=list)
    fiscal: list[Service] = field(default_factory=list)
    gateway_port: int = 0
    # With tokens checked, as make run has them: the gateway and every service.
    authenticated: bool = False
    auth: StackAuth | None = None
    # Traced as make run is: every request, every hop, to the local receiver.
    # Off by default, as in the chart: the scenarios measure the services.
    traced: bool = False
    # Of the requests arriving without a trace, the share traced (100: make run's).
    sampling_percent: float = 100.0
    # mTLS between the sidecars, as make run has it. Off by default: the scenarios
    # measure the services; bench.twin_cost.mtls_cost measures what it adds.
    mtls: bool = False
    trace_url: str = ""  # the receiver's query API, when traced
    _supervisor: Supervisor | None = None
    _databases: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.lancamentos_db = self._database("bench_lancamentos", LANCAMENTOS_MIGRATIONS)
        self.consolidado_db = self._database("bench_consolidado", CONSOLIDADO_MIGRATIONS)
        self.fiscal_db = self._database("bench_fiscal", FISCAL_MIGRATIONS)
        sets = [*free_port_sets(self.sources), *NO_READ_LIMIT]
        if self.authenticated:
            self.auth = StackAuth.prepare(self.workdir)
            sets += gateway_jwt_sets(self.workdir)
        if self.mtls:
            sets += mtls_sets(self.workdir)
        if not self.traced:
            sets.append("mesh.localTopology.traces=null")
        sets.append(f"mesh.tracing.samplingPercent={self.sampling_percent}")
        plan = StackPlan.render(self.sources, sets)
        self._supervisor = Supervisor(self.workdir / "logs", grace=20.0)
        launcher = Supervised(
            self._supervisor,
            self.workdir / "envoy",
            self._env,
            envoy_env=dict(os.environ),
            ready_timeout=30.0,
        )
        asyncio.run(bring_up(plan, launcher))
        services = {
            s.name: Service(s.name, s.address, s.metrics_address or "") for s in plan.services
        }
        self.lancamentos = services[plan.lancamentos.name]
        self.consolidado = [services[replica.name] for replica in plan.consolidado]
        self.fiscal = [services[replica.name] for replica in plan.fiscal]
        self.gateway_port = plan.gateway.listen_port
        if plan.traces is not None:
            self.trace_url = f"http://{plan.lancamentos.host}:{plan.traces.query_port}"

    def _env(self, service: ServicePlan) -> dict[str, str]:
        """Laid under the plan's wiring, which sets the ports (METRICS_PORT too)."""
        env = {
            **os.environ,
            "LOG_LEVEL": "WARNING",
            "DATABASE_POOL_SIZE": "20",
        }
        if self.auth is not None:
            workload = {"lancamentos": DISPATCHER, "fiscal": FISCAL}.get(
                service.service, CONSOLIDADO
            )
            env |= self.auth.env(workload)
        if service.service == "lancamentos":
            return {**env, "DATABASE_URL": self.lancamentos_db}
        if service.service == "fiscal":
            return {**env, "DATABASE_URL": self.fiscal_db}
        return {
            **env,
            "DATABASE_URL": self.consolidado_db,
            "REDIS_URL": self.redis_url,
            "REDIS_KEY_PREFIX": self.redis_key_prefix,
        }

    def _database(self, prefix: str, migrations: Path) -> str:
        name = f"{prefix}_{self.run_id}"
        url = create_database(self.admin_url, name)
        self._databases.append(name)
        upgrade(migrations, url)
        return url

    @property
    def redis_key_prefix(self) -> str:
        """What consolidado's cached balances are keyed under."""
        return f"bench-{self.run_id}:bal"

    def process_pids(self) -> dict[str, int]:
        """Each running process of the stack by name (gateway, sidecars, services)."""
        assert self._supervisor is not None
        return {p.name: p.pid for p in self._supervisor.processes}

    @property
    def metrics(self) -> list[str]:
        found = [self.lancamentos, *self.consolidado, *self.fiscal]
        return [s.metrics for s in found if s is not None]

    def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stop()
        for name in self._databases:
            drop_database(self.admin_url, name)


def sql_scalar(url: str, query: str) -> object:
    async def go() -> object:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    return asyncio.run(go())
