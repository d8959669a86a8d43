"""DestinationRule and VirtualService `spec`s for a policy: the Istio side of the mapping.

The Helm chart renders these same dicts into objects (helm/caixa/templates/istio/), and
`istio_objects` wraps them in the metadata the chart gives them, so `caixa-mesh render
istio` prints what `helm template` does. A consistency test can feed them through
`envoy_fields` to check that a cluster Envoy gets what the local one does.
"""

from __future__ import annotations

from typing import Any

from mesh.effective import EffectiveRoute, PathMatch, gateway_routes, upstream_routes
from mesh.policy import MeshPolicy, Retries, UpstreamName

JSON = dict[str, Any]


def destination_rule_spec(policy: MeshPolicy, upstream_name: UpstreamName) -> JSON:
    upstream = policy.upstreams[upstream_name]
    pool = upstream.connection_pool
    traffic_policy: JSON = {
        "connectionPool": {
            "tcp": {
                "maxConnections": pool.max_connections,
                "connectTimeout": str(pool.connect_timeout),
            },
            "http": {
                "http1MaxPendingRequests": pool.max_pending_requests,
                "http2MaxRequests": pool.max_requests,
                "maxRetries": pool.max_retries,
            },
        }
    }
    detection = upstream.outlier_detection
    if detection is not None:
        traffic_policy["outlierDetection"] = {
            "consecutive5xxErrors": detection.consecutive_5xx_errors,
            "consecutiveGatewayErrors": detection.consecutive_gateway_errors,
            "interval": str(detection.interval),
            "baseEjectionTime": str(detection.base_ejection_time),
            "maxEjectionPercent": detection.max_ejection_percent,
        }
    failover = upstream.locality_failover
    if failover is not None:
        setting: JSON = {"enabled": failover.enabled}
        if failover.failover:
            setting["failover"] = [{"from": f.from_, "to": f.to} for f in failover.failover]
        if failover.failover_priority:
            setting["failoverPriority"] = list(failover.failover_priority)
        # No `simple`: pilot keeps its default LEAST_REQUEST, as without loadBalancer.
        traffic_policy["loadBalancer"] = {"localityLbSetting": setting}
    return {"host": upstream.host, "trafficPolicy": traffic_policy}


def http_retry(retries: Retries) -> JSON:
    """Istio's HTTPRetry. `attempts: 0` must be explicit: an absent `retries` would give
    the mesh default (2 retries), which is wrong for a non-idempotent call."""
    if retries.attempts == 0:
        return {"attempts": 0}
    spec: JSON = {
        "attempts": retries.attempts,
        "retryIgnorePreviousHosts": retries.retry_other_hosts,
        "retryRemoteLocalities": retries.retry_remote_localities,
    }
    if retries.retry_on:
        spec["retryOn"] = ",".join(retries.retry_on)
    if retries.per_try_timeout is not None:
        spec["perTryTimeout"] = str(retries.per_try_timeout)
    if retries.backoff is not None:
        spec["backoff"] = str(retries.backoff.base_interval)
    return spec


def _string_match(match: PathMatch) -> JSON:
    return {match.kind: match.value}


def http_route(route: EffectiveRoute, host: str) -> JSON:
    # "<upstream>.<class>", as the local Envoy names its routes: Istio names the Envoy route
    # after the HTTPRoute, and the gateway VirtualService holds both upstreams' classes.
    name = route.name if not route.is_default else f"default-{route.services[0]}"
    spec: JSON = {"name": f"{route.upstream}.{name}"}
    spec["match"] = [{"uri": _string_match(route.match())}]
    spec["route"] = [{"destination": {"host": host}}]
    spec["timeout"] = str(route.timeout)
    spec["retries"] = http_retry(route.retries)
    return spec


def virtual_service_spec(policy: MeshPolicy, upstream_name: UpstreamName) -> JSON:
    """The mesh-internal VirtualService (sidecars), every route class of the upstream."""
    host = policy.upstreams[upstream_name].host
    return {
        "hosts": [host],
        "http": [http_route(r, host) for r in upstream_routes(policy, upstream_name)],
    }


def gateway_virtual_service_spec(
    policy: MeshPolicy, gateway: str, hosts: tuple[str, ...] = ("*",)
) -> JSON:
    """The gateway's VirtualService: public services only; the rest matches nothing."""
    return {
        "hosts": list(hosts),
        "gateways": [gateway],
        "http": [http_route(r, policy.upstreams[r.upstream].host) for r in gateway_routes(policy)],
    }


def istio_specs(
    policy: MeshPolicy, gateway: str = "caixa-gateway", hosts: tuple[str, ...] = ("*",)
) -> dict[str, JSON]:
    """Every spec by a stable name: `<upstream>` DR/VS pairs plus the gateway VS."""
    specs: dict[str, JSON] = {}
    for name in sorted(policy.upstreams):
        specs[f"DestinationRule/{name}"] = destination_rule_spec(policy, name)
        specs[f"VirtualService/{name}"] = virtual_service_spec(policy, name)
    specs[f"VirtualService/{gateway}"] = gateway_virtual_service_spec(policy, gateway, hosts)
    return specs


def object_labels(release: str) -> dict[str, str]:
    """The chart's `caixa.istio.labels`."""
    return {
        "app.kubernetes.io/part-of": "caixa",
        "app.kubernetes.io/component": "mesh",
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/instance": release,
    }


def istio_objects(
    policy: MeshPolicy,
    *,
    namespace: str = "caixa",
    release: str = "caixa",
    gateway: str = "caixa-gateway",
    hosts: tuple[str, ...] = ("*",),
) -> list[JSON]:
    """The DestinationRule/VirtualService objects exactly as the chart renders them for a
    release in `namespace`, with `hosts` = the values' istio.gateway.hosts."""
    return [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": key.split("/", 1)[0],
            "metadata": {
                "name": key.split("/", 1)[1],
                "namespace": namespace,
                "labels": object_labels(release),
            },
            "spec": spec,
        }
        for key, spec in istio_specs(policy, gateway, hosts).items()
    ]
