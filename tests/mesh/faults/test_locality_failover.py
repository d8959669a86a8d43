"""A dead replica on each side of a locality failover never leaves a caller without
endpoints while one is healthy (issue 11 §4).

A real Envoy gets the consolidado cluster exactly as the chart's policy makes it for
Istio (mesh.envoy_fields, held equal to pilot's output elsewhere): outlier detection
with every host ejectable, the panic threshold, the retry policy. Its endpoints come in
the two priorities pilot assigns a caller in sa-east-1 (tests/helm/test_load_spread.py):
two replicas in the caller's region, two in the other. The replicas are real gRPC
servers on loopback; one of each side dies, then the local survivor too.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.envoy_fields import outbound_cluster_fields, retry_policy
from mesh.values import load_values, policy_from_values
from tests.support.paths import CHART_DIR
from tooling.devstack.envoy import start_envoy, stats, write_config
from tooling.devstack.processes import LOOPBACK, free_port

pytestmark = pytest.mark.slow

CLUSTER = "consolidado"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
CALLS, WITHIN = 200, 10.0


class Counted(health_pb2_grpc.HealthServicer):  # type: ignore[misc]  # untyped stubs
    def __init__(self, name: str, served: Counter[str]) -> None:
        self._name, self._served = name, served

    async def Check(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> health_pb2.HealthCheckResponse:
        self._served[self._name] += 1
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@dataclass
class Replica:
    name: str
    port: int
    server: grpc.aio.Server

    async def die(self) -> None:
        await self.server.stop(grace=None)


async def _replica(name: str, served: Counter[str]) -> Replica:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(Counted(name, served), server)
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    await server.start()
    return Replica(name, port, server)


def _address(port: int) -> dict[str, Any]:
    return {"socket_address": {"address": LOOPBACK, "port_value": port}}


def _endpoints(replicas: list[Replica], priority: int, region: str) -> dict[str, Any]:
    return {
        "priority": priority,
        "locality": {"region": region},
        "lb_endpoints": [
            {
                "endpoint": {
                    "address": {"socket_address": {"address": LOOPBACK, "port_value": r.port}}
                }
            }
            for r in replicas
        ],
    }


def _config(
    local: list[Replica], remote: list[Replica], port: int, admin: int, sets: list[str]
) -> dict[str, Any]:
    values = load_values([CHART_DIR / "values.yaml", CHART_DIR / "values-cloud.yaml"], sets)
    upstream = policy_from_values(values).upstreams["consolidado"]
    assert upstream.locality_failover is not None
    cluster = {
        "name": CLUSTER,
        "type": "STATIC",
        # Istio runs no active health checks: only outlier detection takes hosts out.
        **outbound_cluster_fields(
            upstream.connection_pool, upstream.outlier_detection, None, upstream.retry_budget
        ),
        "typed_extension_protocol_options": {
            HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{HTTP_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": CLUSTER,
            "endpoints": [
                _endpoints(local, 0, "sa-east-1"),
                _endpoints(remote, 1, "br-sp-onprem"),
            ],
        },
    }
    route: dict[str, Any] = {"cluster": CLUSTER, "timeout": "5s"}
    retries = retry_policy(upstream.retries)
    if retries is not None:
        route["retry_policy"] = retries
    manager = {
        "@type": HCM_TYPE,
        "stat_prefix": "ingress",
        "codec_type": "HTTP2",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": route}],
                }
            ]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    listener = {
        "name": "in",
        "address": {"socket_address": {"address": LOOPBACK, "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }
    return {
        "admin": {"address": {"socket_address": {"address": LOOPBACK, "port_value": admin}}},
        "static_resources": {"listeners": [listener], "clusters": [cluster]},
    }


@dataclass
class Mesh:
    local: list[Replica]
    remote: list[Replica]
    served: Counter[str]
    target: str
    admin: int


@pytest.fixture
def policy_sets() -> list[str]:
    return []


@pytest.fixture
async def mesh(tmp_path: Path, policy_sets: list[str]) -> AsyncIterator[Mesh]:
    served: Counter[str] = Counter()
    local = [await _replica(f"local-{i}", served) for i in range(2)]
    remote = [await _replica(f"remote-{i}", served) for i in range(2)]
    port, admin = free_port(), free_port()
    path = write_config(tmp_path / "envoy.json", _config(local, remote, port, admin, policy_sets))
    envoy = await asyncio.to_thread(
        start_envoy, "envoy-locality", path, admin, log_path=tmp_path / "envoy.log"
    )
    try:
        yield Mesh(local, remote, served, f"{LOOPBACK}:{port}", admin)
    finally:
        envoy.stop(grace=5)
        for replica in local + remote:
            await replica.server.stop(grace=None)


async def _calls(mesh: Mesh) -> list[grpc.StatusCode]:
    codes = []
    deadline = time.monotonic() + WITHIN
    async with grpc.aio.insecure_channel(mesh.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(CALLS):
            try:
                await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as error:
                codes.append(error.code())
            if time.monotonic() > deadline:
                break
    return codes


def _ejected(mesh: Mesh) -> int:
    return stats(mesh.admin, f"cluster.{CLUSTER}.outlier_detection.ejections_active").get(
        f"cluster.{CLUSTER}.outlier_detection.ejections_active", 0
    )


async def test_a_dead_replica_on_each_side_leaves_the_survivors_serving(mesh: Mesh) -> None:
    assert set(await _calls(mesh)) == {grpc.StatusCode.OK}
    # All healthy: the caller's region takes everything.
    assert mesh.served["remote-0"] + mesh.served["remote-1"] == 0, mesh.served
    await mesh.local[0].die()
    await mesh.remote[0].die()
    mesh.served.clear()
    codes = await _calls(mesh)
    # Retries on other hosts hide the dead ones until they are ejected.
    assert set(codes) == {grpc.StatusCode.OK}, Counter(codes)
    # Half the local region healthy (× 1.4 overprovisioning): about 70 % stays local, the
    # rest goes to the other region's survivor.
    assert mesh.served["local-1"] > 0 and mesh.served["remote-1"] > 0, mesh.served
    assert mesh.served["local-1"] > mesh.served["remote-1"], mesh.served


async def test_with_only_the_other_regions_survivor_every_call_is_served(mesh: Mesh) -> None:
    assert set(await _calls(mesh)) == {grpc.StatusCode.OK}
    for replica in (*mesh.local, mesh.remote[0]):
        await replica.die()
    await _calls(mesh)  # the dead are found out and ejected
    mesh.served.clear()
    codes = await _calls(mesh)
    assert set(codes) == {grpc.StatusCode.OK}, Counter(codes)
    # Three of four ejected (maxEjectionPercent 100); the healthy one is never among them.
    assert _ejected(mesh) == 3
    assert set(mesh.served) == {"remote-1"}


@pytest.mark.parametrize(
    "policy_sets", [["mesh.upstreams.consolidado.outlierDetection.maxEjectionPercent=50"]]
)
async def test_the_old_cap_keeps_a_dead_replica_in_rotation(mesh: Mesh) -> None:
    """The contrast: a 50 % cap (the old overlays' default) counts the other region's
    hosts too, so with three of four dead one stays in and every call to it is retried."""
    assert set(await _calls(mesh)) == {grpc.StatusCode.OK}
    for replica in (*mesh.local, mesh.remote[0]):
        await replica.die()
    await _calls(mesh)
    before = stats(mesh.admin, f"cluster.{CLUSTER}.upstream_rq_retry")
    await _calls(mesh)
    after = stats(mesh.admin, f"cluster.{CLUSTER}.upstream_rq_retry")
    assert _ejected(mesh) == 2
    retried = f"cluster.{CLUSTER}.upstream_rq_retry"
    assert after.get(retried, 0) > before.get(retried, 0)
