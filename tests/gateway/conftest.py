"""The public contract through a real gateway Envoy, in front of real services.

lancamentos (with its outbox dispatcher) and two consolidado replicas run in-process on
free loopback ports, over real PostgreSQL and Redis. The gateway and the inbound sidecars
come from the same renderer `make run` uses (`local_envoys`), with every port of the local
topology overridden by Helm-style `--set`. The gateway's clusters point at the replicas'
inbound sidecars, as in Istio, so those run too; each sends to its app on loopback. The
dispatcher calls consolidado directly (its egress sidecar is not under test here).

Tests share one mesh per package and stay apart by using a fresh merchant each.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mesh.render.bundle import local_envoys
from mesh.values import load_policy
from tests.envoys import start_all, stop_all, wait_membership
from tests.integration.conftest import Mesh, migrated_databases
from tooling.devstack.envoy import stats
from tooling.devstack.mesh import MeshPorts
from tooling.devstack.processes import ServerProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
VALUES = REPO_ROOT / "helm" / "caixa" / "values.yaml"
VALUES_LOCAL = REPO_ROOT / "helm" / "caixa" / "values-local.yaml"
DESCRIPTOR = REPO_ROOT / "build" / "caixa.pb"


@dataclass(frozen=True)
class Gateway:
    """The running gateway: where to send REST and gRPC, and what is behind it."""

    port: int
    admin_port: int
    mesh: Mesh
    envoys: dict[str, ServerProcess]
    # The rendered bootstrap of the running gateway, for tests that start a variant.
    config: dict[str, Any]

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stats(self, contains: str = "") -> dict[str, int]:
        return stats(self.admin_port, contains)


@dataclass(frozen=True)
class Reply:
    """One REST answer: status, parsed JSON body (or the raw text), content type."""

    status: int
    body: Any
    content_type: str


def http_request(base_url: str, method: str, path: str, body: object | None) -> Reply:
    host, _, port = base_url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        headers = {"accept": "application/json"}
        payload = None
        if body is not None:
            payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            headers["content-type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read().decode()
        content_type = response.getheader("content-type", "")
        parsed: Any = raw
        if content_type.startswith("application/json"):
            parsed = json.loads(raw)
        return Reply(response.status, parsed, content_type)
    finally:
        connection.close()


async def rest(gateway: Gateway, method: str, path: str, body: object | None = None) -> Reply:
    """A REST call through the gateway. In a thread: the services share this event loop.
    `body` is sent as JSON; a str is sent as it is (for malformed JSON)."""
    return await asyncio.to_thread(http_request, gateway.rest_url, method, path, body)


@pytest.fixture(scope="package")
async def gateway_dbs(make_database: Callable[[str], str]) -> tuple[str, str]:
    return await migrated_databases(make_database, "gw")


@pytest.fixture(scope="package")
async def gateway(
    gateway_dbs: tuple[str, str], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    if not DESCRIPTOR.exists():
        pytest.fail(f"{DESCRIPTOR} is missing: run `make proto` first")
    out = tmp_path_factory.mktemp("gateway")
    ports = MeshPorts.free()
    gw_port, gw_admin = ports.gateway, ports.gateway_admin
    lanc, (cons0, cons1) = ports.lancamentos, ports.consolidado
    sets = ports.sets()
    policy = load_policy([VALUES, VALUES_LOCAL], sets)
    envoys = {e.name: e for e in local_envoys(policy, DESCRIPTOR)}
    gateway_envoy = envoys.pop("gateway")
    sidecars = [e for name, e in envoys.items() if name.startswith("inbound-")]
    assert len(sidecars) == 3, sorted(envoys)

    lanc_db, cons_db = gateway_dbs
    mesh = Mesh(
        lancamentos_db=lanc_db,
        consolidado_db=cons_db,
        redis_url=redis_url,
        key_prefix=f"gw-{uuid.uuid4().hex[:8]}:bal",
        consolidado_ports=[cons0[0], cons1[0]],
        lancamentos_port=lanc[0],
        consolidados=[None, None],
    )
    processes: dict[str, ServerProcess] = {}
    try:
        await mesh.start_consolidado(0)
        await mesh.start_consolidado(1)
        await mesh.add_lancamentos(serve=True, dispatch=True)
        # Sidecars first: the gateway's first health checks go through them.
        processes.update(await start_all(sidecars, out))
        processes.update(await start_all([gateway_envoy], out))
        await wait_membership(gw_admin, {"lancamentos": 1, "consolidado": 2}, within=15)
        yield Gateway(gw_port, gw_admin, mesh, processes, gateway_envoy.config)
    finally:
        await asyncio.to_thread(stop_all, processes)
        mesh.gate.open()
        await mesh.close()


@pytest.fixture
def merchant() -> str:
    """A merchant of this test alone, so tests need not truncate the shared databases."""
    return f"gw-{uuid.uuid4().hex[:12]}"
