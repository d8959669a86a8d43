"""Fault tests: the local mesh, real Envoys included, with the dispatcher on its egress.

Like tests/gateway, lancamentos (with its outbox dispatcher) and two consolidado replicas
run in-process on free loopback ports over real PostgreSQL and Redis, and the gateway and
inbound sidecars come from `local_envoys`. Here the dispatcher's egress sidecar runs too,
and the dispatcher's `consolidado_target` is that sidecar, as in `make run`.

Each test starts its own stack (`fault_stack(extra_sets)`), so a test can render the
policy with its own `--set` overrides (a tiny connection pool, a low rate limit) and can
break services without disturbing another test. Databases are shared by the package and
truncated per stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mesh.render.bundle import local_envoys
from mesh.values import load_policy
from services.lancamentos.outbox.dispatcher import OutboxDispatcher
from services.platform.database import sqlalchemy_url
from tests.envoys import start_all, stop_all, wait_membership
from tests.integration.conftest import Mesh, _truncate, migrated_databases
from tooling.devstack.envoy import stats
from tooling.devstack.mesh import MeshPorts
from tooling.devstack.processes import ServerProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
VALUES = REPO_ROOT / "helm" / "caixa" / "values.yaml"
VALUES_LOCAL = REPO_ROOT / "helm" / "caixa" / "values-local.yaml"
DESCRIPTOR = REPO_ROOT / "build" / "caixa.pb"

CONSOLIDADO = "mesh.upstreams.consolidado"


@dataclass(frozen=True)
class Stack:
    """One running local mesh: the gateway, the dispatcher's egress, and the services."""

    gateway_port: int
    gateway_admin: int
    egress_port: int
    egress_admin: int
    mesh: Mesh
    consolidado_engine: AsyncEngine
    envoys: dict[str, ServerProcess]

    @property
    def gateway_target(self) -> str:
        return f"127.0.0.1:{self.gateway_port}"

    @property
    def egress_target(self) -> str:
        return f"127.0.0.1:{self.egress_port}"

    @property
    def dispatcher(self) -> OutboxDispatcher:
        dispatcher = self.mesh.lancamentos[0].dispatcher
        assert dispatcher is not None
        return dispatcher

    async def gateway_stats(self, contains: str = "") -> dict[str, int]:
        return await asyncio.to_thread(stats, self.gateway_admin, contains)

    async def egress_stats(self, contains: str = "") -> dict[str, int]:
        return await asyncio.to_thread(stats, self.egress_admin, contains)

    async def wait_healthy(self, admin_port: int, cluster: str, hosts: int, within: float) -> None:
        """Until `admin_port`'s Envoy counts `hosts` healthy members of `cluster`."""
        await wait_membership(admin_port, {cluster: hosts}, within)


@pytest.fixture(scope="package")
async def fault_dbs(make_database: Callable[[str], str]) -> tuple[str, str]:
    return await migrated_databases(make_database, "ft")


StackFactory = Callable[[Sequence[str]], contextlib.AbstractAsyncContextManager[Stack]]


@pytest.fixture
def fault_stack(fault_dbs: tuple[str, str], redis_url: str, tmp_path: Path) -> StackFactory:
    """`async with fault_stack([...extra --set...]) as stack:` a fresh running mesh."""
    if not DESCRIPTOR.exists():
        pytest.fail(f"{DESCRIPTOR} is missing: run `make proto` first")

    @contextlib.asynccontextmanager
    async def run(extra_sets: Sequence[str] = ()) -> AsyncIterator[Stack]:
        ports = MeshPorts.free()
        gw_port, gw_admin = ports.gateway, ports.gateway_admin
        egress_port, egress_admin = ports.egress, ports.egress_admin
        lanc, (cons0, cons1) = ports.lancamentos, ports.consolidado
        sets = ports.sets()
        policy = load_policy([VALUES, VALUES_LOCAL], [*sets, *extra_sets])
        envoys = {e.name: e for e in local_envoys(policy, DESCRIPTOR)}
        front = [envoys.pop("gateway"), envoys.pop("egress-dispatcher")]
        sidecars = [e for name, e in envoys.items() if name.startswith("inbound-")]
        assert len(sidecars) == 3, sorted(envoys)

        lanc_db, cons_db = fault_dbs
        mesh = Mesh(
            lancamentos_db=lanc_db,
            consolidado_db=cons_db,
            redis_url=redis_url,
            key_prefix=f"ft-{uuid.uuid4().hex[:8]}:bal",
            consolidado_ports=[cons0[0], cons1[0]],
            lancamentos_port=lanc[0],
            consolidados=[None, None],
        )
        await _truncate(mesh)
        engine = create_async_engine(sqlalchemy_url(cons_db))
        processes: dict[str, ServerProcess] = {}
        try:
            await mesh.start_consolidado(0)
            await mesh.start_consolidado(1)
            # Sidecars first: the front Envoys' first health checks go through them.
            processes.update(await start_all(sidecars, tmp_path))
            processes.update(await start_all(front, tmp_path))
            await mesh.add_lancamentos(
                serve=True, dispatch=True, consolidado_target=f"127.0.0.1:{egress_port}"
            )
            stack = Stack(gw_port, gw_admin, egress_port, egress_admin, mesh, engine, processes)
            await stack.wait_healthy(gw_admin, "lancamentos", 1, within=15)
            await stack.wait_healthy(gw_admin, "consolidado", 2, within=15)
            await stack.wait_healthy(egress_admin, "consolidado", 2, within=15)
            yield stack
        finally:
            mesh.gate.open()
            await mesh.close()
            await asyncio.to_thread(stop_all, processes)
            await engine.dispose()

    return run


@pytest.fixture
def merchant() -> str:
    """A merchant of this test alone."""
    return f"ft-{uuid.uuid4().hex[:12]}"
