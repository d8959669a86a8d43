"""The local mesh's Envoys for `make run`: rendered from the Helm values'
`mesh:` policy (values.yaml + values-local.yaml), the same source the chart
uses, with the service ports `make run` chose."""

from __future__ import annotations

from pathlib import Path

from caixa.devstack import envoy
from caixa.mesh.render.bundle import LocalEnvoy, local_envoys
from caixa.mesh.values import load_policy

REPO = Path(__file__).resolve().parents[3]
VALUES = (REPO / "helm/caixa/values.yaml", REPO / "helm/caixa/values-local.yaml")
DESCRIPTOR = REPO / "build/caixa.pb"
OPENAPI = REPO / "openapi/caixa.openapi.json"

# Stop order, highest first: the gateway stops taking traffic, lancamentos
# drains its outbox through the egress sidecar into consolidado's inbound
# sidecars, and only then do those and consolidado stop.
GATEWAY_TIER = 6
LANCAMENTOS_TIER = 5
EGRESS_TIER = 4
CONSOLIDADO_INBOUND_TIER = 3
CONSOLIDADO_TIER = 2


def port_overrides(lancamentos: int, consolidado: tuple[int, ...]) -> list[str]:
    """`--set` lines placing the services on the ports `make run` uses."""
    sets = [f"mesh.localTopology.services.lancamentos.replicas[0].appPort={lancamentos}"]
    sets += [
        f"mesh.localTopology.services.consolidado.replicas[{i}].appPort={port}"
        for i, port in enumerate(consolidado)
    ]
    return sets


def local_mesh(sets: list[str]) -> list[LocalEnvoy]:
    return local_envoys(load_policy(VALUES, sets), DESCRIPTOR, OPENAPI)


def tier_of(name: str) -> int:
    if name == "gateway":
        return GATEWAY_TIER
    if name.startswith("inbound-consolidado"):
        return CONSOLIDADO_INBOUND_TIER
    return EGRESS_TIER


def write(proxy: LocalEnvoy, config_dir: Path) -> Path:
    return envoy.write_config(config_dir / proxy.filename, proxy.config)
