"""Mutual TLS between the local mesh's Envoys, and who may call what on an inbound sidecar.

What Istio gives the cluster with a STRICT PeerAuthentication and the chart's
AuthorizationPolicies: every sidecar-to-sidecar hop presents a certificate naming its
workload (a SPIFFE id), accepts only certificates of the mesh's CA, and an inbound
sidecar lets a peer reach only what it is meant to call. Here the gateway may call the
public services, an egress sidecar the methods its `calls` names (the dispatcher:
consolidado's ApplyLancamentos), and any peer of the mesh the health service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mesh.envoy_fields import JSON
from mesh.policy import LocalMtls, MeshPolicy, UpstreamName

TLS_SOCKET = "envoy.transport_sockets.tls"
_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
RBAC = "envoy.filters.http.rbac"
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
GATEWAY = "gateway"
# Istio's ingress gateway runs as this account in istio-system.
GATEWAY_ACCOUNT = "ns/istio-system/sa/istio-ingressgateway-service-account"
HEALTH_PREFIX = "/grpc.health.v1.Health/"


def spiffe_id(mtls: LocalMtls, workload: str) -> str:
    """`workload`: "gateway", an egress sidecar's name ("dispatcher") or a service."""
    if workload == GATEWAY:
        return f"spiffe://{mtls.trust_domain}/{GATEWAY_ACCOUNT}"
    return f"spiffe://{mtls.trust_domain}/ns/{mtls.namespace}/sa/caixa-{workload}"


def dns_name(mtls: LocalMtls, workload: str) -> str:
    """A DNS SAN too, so that a gRPC client can check the server (it checks DNS names,
    not URIs): `<workload>.<trustDomain>`."""
    return f"{workload}.{mtls.trust_domain}"


def workloads(policy: MeshPolicy) -> list[str]:
    """Every workload of the local mesh that needs a certificate."""
    topology = policy.topology
    # A service whose own sidecar calls out (fiscal) has one identity for both ways.
    names = [GATEWAY, *(sidecar.name for sidecar in topology.egress), *topology.services]
    return list(dict.fromkeys(names))


def _certificate(mtls: LocalMtls, workload: str) -> JSON:
    return {
        "tls_certificates": [
            {
                "certificate_chain": {"filename": f"{mtls.certs_dir}/{workload}.pem"},
                "private_key": {"filename": f"{mtls.certs_dir}/{workload}.key"},
            }
        ],
        # TLS 1.3 only, as Istio's mesh default; an upstream's maximum is 1.2 unless set.
        "tls_params": {
            "tls_minimum_protocol_version": "TLSv1_3",
            "tls_maximum_protocol_version": "TLSv1_3",
        },
        "alpn_protocols": ["h2"],
    }


def _validation(mtls: LocalMtls, peers: Iterable[JSON]) -> JSON:
    return {
        "trusted_ca": {"filename": f"{mtls.certs_dir}/ca.pem"},
        "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": m} for m in peers],
    }


def downstream_socket(mtls: LocalMtls, workload: str) -> JSON:
    """An inbound listener's TLS: a client certificate of the mesh is required; which
    peer may call what is the RBAC filter's decision."""
    trust_domain: JSON = {"prefix": f"spiffe://{mtls.trust_domain}/"}
    return {
        "name": TLS_SOCKET,
        "typed_config": {
            "@type": _TLS + "DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": {
                **_certificate(mtls, workload),
                "validation_context": _validation(mtls, [trust_domain]),
            },
        },
    }


def upstream_socket(mtls: LocalMtls, workload: str, server: str) -> JSON:
    """A caller's TLS toward `server`'s inbound sidecars: it presents `workload`'s
    certificate and accepts only `server`'s."""
    return {
        "name": TLS_SOCKET,
        "typed_config": {
            "@type": _TLS + "UpstreamTlsContext",
            "common_tls_context": {
                **_certificate(mtls, workload),
                "validation_context": _validation(mtls, [{"exact": spiffe_id(mtls, server)}]),
            },
        },
    }


def _policy(paths: Sequence[JSON], principals: Sequence[JSON]) -> JSON:
    return {
        "permissions": [{"url_path": {"path": p}} for p in paths],
        "principals": [{"authenticated": {"principal_name": m}} for m in principals],
    }


def callers(policy: MeshPolicy, service: UpstreamName) -> dict[str, list[JSON]]:
    """Workload → the paths of `service` it may call (path matchers): the gateway its
    public services, an egress sidecar that calls this upstream the methods it names."""
    public = set(policy.gateway.public_services)
    served = policy.upstreams[service].services
    allowed = {GATEWAY: [{"prefix": f"/{s}/"} for s in served if s in public]}
    for sidecar in policy.topology.egress:
        if service in sidecar.upstreams:
            mine = [m for m in sidecar.calls if m.split("/")[0] in served]
            allowed[sidecar.name] = [{"exact": f"/{m}"} for m in mine]
    return {workload: paths for workload, paths in allowed.items() if paths}


def rbac_filter(policy: MeshPolicy, mtls: LocalMtls, service: UpstreamName) -> JSON:
    """Anything not allowed gets 403 (gRPC: PERMISSION_DENIED).

    Stats: `http.<inbound stat prefix>.rbac.{allowed,denied}`."""
    rules = {
        "health": _policy(
            [{"prefix": HEALTH_PREFIX}], [{"prefix": f"spiffe://{mtls.trust_domain}/"}]
        ),
        **{
            f"{workload}-calls": _policy(paths, [{"exact": spiffe_id(mtls, workload)}])
            for workload, paths in callers(policy, service).items()
        },
    }
    return {
        "name": RBAC,
        "typed_config": {"@type": RBAC_TYPE, "rules": {"action": "ALLOW", "policies": rules}},
    }
