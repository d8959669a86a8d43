"""What the local stack runs, on which ports, wired to what, in which order.

Every port comes from the policy's `mesh.localTopology` (values-local.yaml plus
`--set` overrides): the services listen on their replicas' app ports, the
dispatcher reaches consolidado through its egress sidecar, fiscal's reaches
lancamentos through fiscal's, and consolidado's reconcile and rebuild reach
lancamentos directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mesh.policy import LocalMtls, LocalTopology, LocalTraces, MeshPolicy, ReplicaPorts
from mesh.render import mtls
from mesh.render.bundle import LocalEnvoy, local_envoys
from mesh.values import load_policy
from tooling.devstack.processes import free_port
from tooling.stack.sources import MeshSources

DISPATCHER_EGRESS = "egress-dispatcher"
FISCAL_EGRESS = "egress-fiscal"


@dataclass(frozen=True)
class ServicePlan:
    """One service process: where it listens and the settings that wire it in."""

    service: str  # "lancamentos", "consolidado" or "fiscal"
    index: int
    host: str
    port: int
    env: Mapping[str, str]  # settings as environment variables (GRPC_PORT, ..._TARGET)

    @property
    def name(self) -> str:
        """What `caixa-devstack stop NAME` takes: the replicas go by their port."""
        return self.service if self.service == "lancamentos" else f"{self.service}-{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def metrics_address(self) -> str | None:
        """host:port of its Prometheus /metrics, if it serves one."""
        port = self.env.get("METRICS_PORT")
        return f"{self.host}:{port}" if port else None


@dataclass(frozen=True)
class StackPlan:
    lancamentos: ServicePlan
    consolidado: tuple[ServicePlan, ...]
    fiscal: tuple[ServicePlan, ...]
    envoys: tuple[LocalEnvoy, ...]
    traces: LocalTraces | None = None  # the trace receiver, started first
    prometheus_port: int | None = None  # Prometheus, when one is installed
    mtls: LocalMtls | None = None  # the sidecars' mTLS: certificates to issue first
    mtls_workloads: tuple[str, ...] = ()

    @classmethod
    def of(cls, policy: MeshPolicy, descriptor: Path, openapi: Path | None = None) -> StackPlan:
        topology = policy.topology
        envoys = tuple(local_envoys(policy, descriptor, openapi))
        by_name = {envoy.name: envoy for envoy in envoys}
        host = topology.address
        traced = tracing_env(policy)
        [lancamentos_replica] = topology.services["lancamentos"].replicas
        lancamentos_port = lancamentos_replica.app_port
        dispatcher_egress = by_name[DISPATCHER_EGRESS]
        lancamentos = ServicePlan(
            "lancamentos",
            0,
            host,
            lancamentos_port,
            {
                "GRPC_HOST": host,
                "GRPC_PORT": str(lancamentos_port),
                # The dispatcher reaches consolidado only through its sidecar.
                "CONSOLIDADO_TARGET": f"{host}:{dispatcher_egress.listen_port}",
                **traced,
                **_metrics_env(lancamentos_replica),
            },
        )
        consolidado = tuple(
            ServicePlan(
                "consolidado",
                index,
                host,
                replica.app_port,
                {
                    "GRPC_HOST": host,
                    "GRPC_PORT": str(replica.app_port),
                    "LANCAMENTOS_TARGET": lancamentos.address,
                    **traced,
                    **_metrics_env(replica),
                },
            )
            for index, replica in enumerate(topology.services["consolidado"].replicas)
        )
        local_fiscal = topology.services.get("fiscal")
        fiscal_egress = by_name.get(FISCAL_EGRESS)
        fiscal = tuple(
            ServicePlan(
                "fiscal",
                index,
                host,
                replica.app_port,
                {
                    "GRPC_HOST": host,
                    "GRPC_PORT": str(replica.app_port),
                    # Its dispatcher reaches lancamentos only through its sidecar.
                    "LANCAMENTOS_TARGET": f"{host}:{fiscal_egress.listen_port}"
                    if fiscal_egress is not None
                    else lancamentos.address,
                    **traced,
                    **_metrics_env(replica),
                },
            )
            for index, replica in enumerate(local_fiscal.replicas if local_fiscal else ())
        )
        return cls(
            lancamentos,
            consolidado,
            fiscal,
            envoys,
            topology.traces,
            topology.prometheus_port,
            topology.mtls,
            tuple(mtls.workloads(policy)) if topology.mtls else (),
        )

    @classmethod
    def render(
        cls, sources: MeshSources, sets: Sequence[str] = (), *, openapi: bool = True
    ) -> StackPlan:
        """The plan of values.yaml + values-local.yaml with `sets` applied."""
        policy = load_policy(sources.values, sets)
        return cls.of(policy, sources.descriptor, sources.openapi if openapi else None)

    def envoy(self, name: str) -> LocalEnvoy:
        [found] = [envoy for envoy in self.envoys if envoy.name == name]
        return found

    @property
    def gateway(self) -> LocalEnvoy:
        return self.envoy("gateway")

    @property
    def dispatcher_egress(self) -> LocalEnvoy:
        return self.envoy(DISPATCHER_EGRESS)

    @property
    def fiscal_egress(self) -> LocalEnvoy:
        return self.envoy(FISCAL_EGRESS)

    @property
    def sidecars(self) -> tuple[LocalEnvoy, ...]:
        """The inbound sidecars: the front Envoys' health checks go through them."""
        return tuple(e for e in self.envoys if e.name.startswith("inbound-"))

    @property
    def front(self) -> tuple[LocalEnvoy, ...]:
        """The gateway and the egress sidecars."""
        return tuple(e for e in self.envoys if not e.name.startswith("inbound-"))

    @property
    def services(self) -> tuple[ServicePlan, ...]:
        return (self.lancamentos, *self.consolidado, *self.fiscal)

    @property
    def membership(self) -> dict[int, dict[str, int]]:
        """Per Envoy admin port, the healthy hosts each cluster has once all is up."""
        hosts = {"lancamentos": 1, "consolidado": len(self.consolidado)}
        if self.fiscal:
            hosts["fiscal"] = len(self.fiscal)
        found = {
            self.gateway.admin_port: hosts,
            self.dispatcher_egress.admin_port: {"consolidado": hosts["consolidado"]},
        }
        if self.fiscal:
            found[self.fiscal_egress.admin_port] = {"lancamentos": 1}
        return found

    @property
    def ports(self) -> list[int]:
        traces = self.traces
        return [
            *(s.port for s in self.services),
            *(int(s.env["METRICS_PORT"]) for s in self.services if "METRICS_PORT" in s.env),
            *(p for e in self.envoys for p in (e.listen_port, e.admin_port)),
            *((traces.otlp_port, traces.query_port) if traces is not None else ()),
        ]  # Prometheus' port aside: optional, it is skipped when taken


def _metrics_env(replica: ReplicaPorts) -> dict[str, str]:
    return {"METRICS_PORT": str(replica.metrics_port)} if replica.metrics_port else {}


def tracing_env(policy: MeshPolicy) -> dict[str, str]:
    """The services' OpenTelemetry settings: export to the local receiver, and
    sample the traces they start as the Envoys do."""
    topology = policy.topology
    if topology.traces is None:
        return {}
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{topology.address}:{topology.traces.otlp_port}",
        "OTEL_TRACES_SAMPLER_ARG": str(policy.tracing.sampling_percent / 100),
        # The SDK's own variable: export every half second, as the Envoys do.
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }


def free_port_sets(sources: MeshSources) -> list[str]:
    """`--set` lines moving every port of the local topology to a free one, for
    stacks that run beside `make run` (the tests, the bench)."""
    topology = load_policy(sources.values).topology
    paths = _port_paths(topology)
    ports: list[int] = []
    while len(ports) < len(paths):
        port = free_port()  # may repeat one: keep them distinct
        if port not in ports:
            ports.append(port)
    return [f"{path}={port}" for path, port in zip(paths, ports, strict=True)]


def _port_paths(topology: LocalTopology) -> list[str]:
    root = "mesh.localTopology"
    paths = [f"{root}.gateway.port", f"{root}.gateway.adminPort"]
    for index in range(len(topology.egress)):
        paths += [f"{root}.egress[{index}].port", f"{root}.egress[{index}].adminPort"]
    for service, local in topology.services.items():
        for index in range(len(local.replicas)):
            replica = f"{root}.services.{service}.replicas[{index}]"
            paths += [f"{replica}.appPort", f"{replica}.inboundPort", f"{replica}.inboundAdminPort"]
            if local.replicas[index].metrics_port is not None:
                paths.append(f"{replica}.metricsPort")
    if topology.prometheus_port is not None:
        paths.append(f"{root}.prometheusPort")
    if topology.traces is not None:
        paths += [f"{root}.traces.otlpPort", f"{root}.traces.queryPort"]
    return paths
