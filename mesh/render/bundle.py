"""Every Envoy of the local mesh, rendered together and written as JSON files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mesh.envoy_fields import JSON
from mesh.methods import load_method_shapes, service_of
from mesh.policy import MeshPolicy
from mesh.render.gateway import render_gateway
from mesh.render.sidecars import egress_node, inbound_node, render_egress, render_inbound


@dataclass(frozen=True)
class LocalEnvoy:
    """One Envoy process of the local mesh: what it is, how to reach its admin."""

    name: str
    config: JSON
    listen_port: int
    admin_port: int

    @property
    def filename(self) -> str:
        return f"{self.name}.json"


def _methods_of(shapes: dict[str, object], services: set[str]) -> list[str]:
    return [m for m in shapes if service_of(m) in services]


def local_envoys(
    policy: MeshPolicy, descriptor: Path, openapi: Path | None = None
) -> list[LocalEnvoy]:
    """`descriptor` is what the gateway's transcoder loads (build/caixa.pb);
    `openapi`, when given, is served by the gateway at /openapi.json."""
    shapes: dict[str, object] = dict(load_method_shapes(descriptor))
    topology = policy.topology
    envoys = [
        LocalEnvoy(
            "gateway",
            render_gateway(
                policy,
                descriptor,
                _methods_of(shapes, set(policy.gateway.public_services)),
                openapi,
            ),
            topology.gateway.port,
            topology.gateway.admin_port,
        )
    ]
    for sidecar in topology.egress:
        services = {s for name in sidecar.upstreams for s in policy.upstreams[name].services}
        envoys.append(
            LocalEnvoy(
                egress_node(sidecar),
                render_egress(policy, sidecar, _methods_of(shapes, services)),
                sidecar.port,
                sidecar.admin_port,
            )
        )
    for service, local in topology.services.items():
        if service not in policy.upstreams:
            continue
        for index, replica in enumerate(local.replicas):
            envoys.append(
                LocalEnvoy(
                    inbound_node(service, index),
                    render_inbound(policy, service, index),
                    replica.inbound_port,
                    replica.inbound_admin_port,
                )
            )
    return envoys


def render_local_mesh(
    policy: MeshPolicy, descriptor: Path, out_dir: Path, openapi: Path | None = None
) -> list[Path]:
    """Write every config into `out_dir`; return their paths. `descriptor` is the
    protos' set from `make proto`, which carries the google.rpc error detail types
    the transcoder needs to print field violations as JSON."""
    out_dir.mkdir(parents=True, exist_ok=True)
    descriptor = descriptor.resolve()
    written = []
    for envoy in local_envoys(policy, descriptor, openapi.resolve() if openapi else None):
        path = out_dir / envoy.filename
        path.write_text(json.dumps(envoy.config, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
