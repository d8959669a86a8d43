"""The local mesh's Envoys for `make run`: rendered from the Helm values'
`mesh:` policy (values.yaml + values-local.yaml), the same source the chart
uses, with the service ports `make run` chose."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mesh.render.bundle import LocalEnvoy, local_envoys
from mesh.values import load_policy
from tooling.devstack import envoy
from tooling.devstack.processes import free_port


@dataclass(frozen=True)
class MeshSources:
    """The files of a checkout that the local mesh is rendered from."""

    root: Path

    @property
    def values(self) -> tuple[Path, Path]:
        chart = self.root / "helm" / "caixa"
        return (chart / "values.yaml", chart / "values-local.yaml")

    @property
    def descriptor(self) -> Path:
        return self.root / "build" / "caixa.pb"

    @property
    def openapi(self) -> Path:
        return self.root / "openapi" / "caixa.openapi.json"


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


def local_mesh(sources: MeshSources, sets: list[str]) -> list[LocalEnvoy]:
    return local_envoys(load_policy(sources.values, sets), sources.descriptor, sources.openapi)


def tier_of(name: str) -> int:
    if name == "gateway":
        return GATEWAY_TIER
    if name.startswith("inbound-consolidado"):
        return CONSOLIDADO_INBOUND_TIER
    return EGRESS_TIER


def write(proxy: LocalEnvoy, config_dir: Path) -> Path:
    return envoy.write_config(config_dir / proxy.filename, proxy.config)


@dataclass(frozen=True)
class MeshPorts:
    """Every port of one local mesh; `free()` picks unused ones (tests, bench)."""

    gateway: int
    gateway_admin: int
    egress: int
    egress_admin: int
    # (app, inbound sidecar, inbound admin) per replica
    lancamentos: tuple[int, int, int]
    consolidado: tuple[tuple[int, int, int], ...]

    @classmethod
    def free(cls, consolidado_replicas: int = 2) -> MeshPorts:
        ports = distinct_free_ports(4 + 3 * (1 + consolidado_replicas))

        def replica(first: int) -> tuple[int, int, int]:
            return (ports[first], ports[first + 1], ports[first + 2])

        return cls(
            gateway=ports[0],
            gateway_admin=ports[1],
            egress=ports[2],
            egress_admin=ports[3],
            lancamentos=replica(4),
            consolidado=tuple(replica(7 + 3 * r) for r in range(consolidado_replicas)),
        )

    def sets(self) -> list[str]:
        topology = "mesh.localTopology"
        sets = [
            f"{topology}.gateway.port={self.gateway}",
            f"{topology}.gateway.adminPort={self.gateway_admin}",
            f"{topology}.egress[0].port={self.egress}",
            f"{topology}.egress[0].adminPort={self.egress_admin}",
        ]
        replicas = [("lancamentos", 0, self.lancamentos)]
        replicas += [("consolidado", i, ports) for i, ports in enumerate(self.consolidado)]
        for service, index, (app, inbound, admin) in replicas:
            replica = f"{topology}.services.{service}.replicas[{index}]"
            sets += [
                f"{replica}.appPort={app}",
                f"{replica}.inboundPort={inbound}",
                f"{replica}.inboundAdminPort={admin}",
            ]
        return sets


def distinct_free_ports(count: int) -> list[int]:
    """`count` different free ports (free_port alone may repeat one)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
