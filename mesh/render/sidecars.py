"""Sidecar Envoys: the outbound (egress) side of a caller and the inbound side of a replica.

Egress is where the caller's protection lives — circuit breakers, outlier detection,
retries, health checks — exactly as in an Istio sidecar's outbound cluster. Inbound is
Istio's `inbound|port||` cluster: no timeout, no retries, the connection pool only.
"""

from __future__ import annotations

from collections.abc import Sequence

from mesh import envoy_fields
from mesh.durations import ZERO
from mesh.effective import upstream_routes
from mesh.envoy_fields import JSON
from mesh.policy import EgressSidecar, MeshPolicy, ReplicaPorts, UpstreamName
from mesh.render import common, mtls
from mesh.render.common import LOOPBACK

HEALTH_PREFIX = "/grpc.health.v1.Health/"


def egress_node(sidecar: EgressSidecar) -> str:
    return f"egress-{sidecar.name}"


def inbound_node(service: UpstreamName, index: int) -> str:
    return f"inbound-{service}-{index}"


def inbound_cluster_name(replica: ReplicaPorts) -> str:
    return f"inbound|{replica.app_port}||"


def render_egress(policy: MeshPolicy, sidecar: EgressSidecar, methods: Sequence[str]) -> JSON:
    topology = policy.topology
    routes: list[JSON] = []
    clusters: list[JSON] = []
    for name in sidecar.upstreams:
        routes += [common.route_entry(r, name) for r in upstream_routes(policy, name)]
        clusters.append(
            common.outbound_cluster(
                name,
                policy.upstreams[name],
                topology.address,
                [r.inbound_port for r in topology.services[name].replicas],
                mtls.upstream_socket(topology.mtls, sidecar.name, name) if topology.mtls else None,
            )
        )
    routes.append(common.not_found_route())
    stat_prefix = f"egress_{sidecar.name}".replace("-", "_")
    filters = [common.grpc_stats_filter(methods), common.router_filter()]
    traced = common.local_tracing(policy, egress_node(sidecar))
    hcm = common.http_connection_manager(
        stat_prefix, routes, filters, edge=False, traced=traced.hcm if traced else None
    )
    return common.bootstrap(
        egress_node(sidecar),
        sidecar.admin_port,
        # Loopback: only the workload beside it may use its sidecar.
        [common.listener(stat_prefix, LOOPBACK, sidecar.port, hcm, outbound=True)],
        clusters,
        traced,
    )


def render_inbound(policy: MeshPolicy, service: UpstreamName, index: int) -> JSON:
    topology = policy.topology
    replica = topology.services[service].replicas[index]
    cluster = inbound_cluster_name(replica)
    # Istio's inbound route: 0s timeouts (the caller's sidecar owns them), no retries.
    to_app: JSON = {"cluster": cluster, **envoy_fields.route_timeout_fields(ZERO)}
    routes: list[JSON] = [
        {
            # In Kubernetes, kubelet's probes reach the app through pilot-agent and never
            # take a slot of the inbound pool. The local front Envoys' active health checks
            # come through this sidecar instead, so they get the HIGH-priority circuit
            # breaker (Envoy's defaults): app traffic filling the DEFAULT pool cannot fail
            # them, and with a small pool two checkers arriving together would otherwise
            # overflow it and mark a healthy replica down.
            "name": "health",
            "match": {"prefix": HEALTH_PREFIX},
            "route": {**to_app, "priority": "HIGH"},
            # The front Envoys check every second: traces of those are noise.
            "tracing": {"overall_sampling": {"numerator": 0}},
        },
        {"name": "default", "match": {"prefix": "/"}, "route": to_app},
    ]
    stat_prefix = f"inbound_{replica.inbound_port}"
    traced = common.local_tracing(policy, inbound_node(service, index))
    # With mTLS, as Istio's AuthorizationPolicies: each peer reaches only its services.
    checks = [mtls.rbac_filter(policy, topology.mtls, service)] if topology.mtls else []
    hcm = common.http_connection_manager(
        stat_prefix,
        routes,
        [*checks, common.router_filter()],
        edge=False,
        traced=traced.hcm if traced else None,
    )
    app = common.static_cluster(
        cluster,
        LOOPBACK,
        [replica.app_port],
        # Istio applies the DestinationRule's connection pool to inbound clusters too.
        envoy_fields.connection_pool_fields(policy.upstreams[service].connection_pool),
    )
    return common.bootstrap(
        inbound_node(service, index),
        replica.inbound_admin_port,
        [
            common.listener(
                stat_prefix,
                topology.address,
                replica.inbound_port,
                hcm,
                tls=mtls.downstream_socket(topology.mtls, service) if topology.mtls else None,
            )
        ],
        [app],
        traced,
    )
