"""Building blocks shared by every local Envoy: addresses, clusters, HCM, access log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mesh import envoy_fields
from mesh.effective import EffectiveRoute
from mesh.envoy_fields import JSON
from mesh.policy import MeshPolicy, UpstreamPolicy

LOOPBACK = "127.0.0.1"

HCM = "envoy.filters.network.http_connection_manager"
HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
ROUTER = "envoy.filters.http.router"
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
GRPC_STATS = "envoy.filters.http.grpc_stats"
GRPC_STATS_TYPE = "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HTTP_OPTIONS_TYPE = f"type.googleapis.com/{HTTP_OPTIONS}"
OTEL_TRACER = "envoy.tracers.opentelemetry"
OTEL_TRACER_TYPE = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"
TRACE_COLLECTOR = "trace-collector"
STDOUT_LOG = "envoy.access_loggers.stdout"
STDOUT_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"

# One JSON object per request; grpc_status and attempts are what the mesh tests read.
ACCESS_LOG_FORMAT = {
    "time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "status": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS%",
    "flags": "%RESPONSE_FLAGS%",
    "details": "%RESPONSE_CODE_DETAILS%",
    "duration_ms": "%DURATION%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_host": "%UPSTREAM_HOST%",
    "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    "route": "%ROUTE_NAME%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "traceparent": "%REQ(TRACEPARENT)%",
}


def socket_address(address: str, port: int) -> JSON:
    return {"socket_address": {"address": address, "port_value": port}}


def admin(port: int) -> JSON:
    """Admin (stats, clusters, config_dump) on loopback only: it can change Envoy's state."""
    return {"address": socket_address(LOOPBACK, port)}


# A route class's methods are one regex; Envoy refuses one whose RE2 program
# passes 100 instructions, about three method paths. Istio's own bootstrap
# raises the limit to this, so the chart's routes load in the cluster as here.
REGEX_RUNTIME: JSON = {"re2.max_program_size.error_level": 32768}


def bootstrap(
    node: str,
    admin_port: int,
    listeners: list[JSON],
    clusters: list[JSON],
    traced: LocalTracing | None = None,
) -> JSON:
    """`traced`: the Envoy exports spans (its cluster and runtime are added)."""
    config: JSON = {
        "node": {"id": node, "cluster": "caixa-local"},
        "admin": admin(admin_port),
        "static_resources": {
            "listeners": listeners,
            "clusters": [*clusters, *([traced.cluster] if traced else [])],
        },
    }
    layers: list[JSON] = [{"name": "regex", "static_layer": REGEX_RUNTIME}]
    if traced is not None:
        layers.append({"name": "tracing", "static_layer": traced.runtime})
    config["layered_runtime"] = {"layers": layers}
    return config


def access_log(envoy: str) -> list[JSON]:
    """JSON lines on stdout, each naming the Envoy that wrote it (all share a terminal)."""
    return [
        {
            "name": STDOUT_LOG,
            "typed_config": {
                "@type": STDOUT_LOG_TYPE,
                "log_format": {"json_format": {"envoy": envoy, **ACCESS_LOG_FORMAT}},
            },
        }
    ]


def http2_options() -> JSON:
    """gRPC upstreams speak HTTP/2 only (Istio's h2 upgrade for gRPC ports)."""
    return {
        HTTP_OPTIONS: {
            "@type": HTTP_OPTIONS_TYPE,
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    }


def static_cluster(name: str, address: str, ports: Sequence[int], fields: JSON) -> JSON:
    return {
        "name": name,
        "type": "STATIC",
        "typed_extension_protocol_options": http2_options(),
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": socket_address(address, p)}} for p in ports
                    ]
                }
            ],
        },
        **fields,
    }


def outbound_cluster(
    name: str,
    upstream: UpstreamPolicy,
    address: str,
    ports: Sequence[int],
    tls: JSON | None = None,
) -> JSON:
    """A caller's view of an upstream: circuit breakers, outlier detection, health checks;
    `tls`: the transport socket of mTLS to its inbound sidecars (mesh.render.mtls)."""
    cluster = static_cluster(
        name,
        address,
        ports,
        envoy_fields.outbound_cluster_fields(
            upstream.connection_pool,
            upstream.outlier_detection,
            upstream.health_check,
            upstream.retry_budget,
        ),
    )
    if tls is not None:
        cluster["transport_socket"] = tls
    return cluster


def route_entry(route: EffectiveRoute, cluster: str, extra: JSON | None = None) -> JSON:
    match = route.match()
    key = {"exact": "path", "prefix": "prefix", "regex": "safe_regex"}[match.kind]
    value: Any = {"regex": match.value} if match.kind == "regex" else match.value
    name = route.name if not route.is_default else f"default-{route.services[0]}"
    entry: JSON = {
        "name": f"{route.upstream}.{name}",
        "match": {key: value},
        "route": {
            "cluster": cluster,
            **envoy_fields.route_action_fields(route.timeout, route.retries),
        },
    }
    if extra:
        entry.update(extra)
    return entry


def not_found_route() -> JSON:
    """Whatever no route matched: 404, which gRPC clients see as UNIMPLEMENTED. (REST
    paths that map to no method never get here: the transcoder answers 404 first.)"""
    return {
        "name": "not-found",
        "match": {"prefix": "/"},
        "direct_response": {
            "status": 404,
            "body": {"inline_string": "no such service or method on this Envoy"},
        },
    }


def grpc_stats_filter(methods: Sequence[str]) -> JSON:
    """Per-method success/failure and per-grpc-status counters, upstream latency too.

    An allowlist rather than stats_for_all_methods: a client could otherwise mint one stat
    per made-up method name."""
    services: dict[str, list[str]] = {}
    for method in methods:
        service, _, name = method.partition("/")
        services.setdefault(service, []).append(name)
    return {
        "name": GRPC_STATS,
        "typed_config": {
            "@type": GRPC_STATS_TYPE,
            "emit_filter_state": True,
            "enable_upstream_stats": True,
            "individual_method_stats_allowlist": {
                "services": [{"name": s, "method_names": m} for s, m in services.items()]
            },
        },
    }


def router_filter() -> JSON:
    return {"name": ROUTER, "typed_config": {"@type": ROUTER_TYPE}}


def http_connection_manager(
    stat_prefix: str,
    routes: list[JSON],
    http_filters: list[JSON],
    *,
    edge: bool,
    local_replies: JSON | None = None,
    max_direct_response_bytes: int | None = None,
    traced: JSON | None = None,
) -> JSON:
    """`traced`: the HCM's tracing (see `tracing`); None traces nothing."""
    extra: JSON = {"local_reply_config": local_replies} if local_replies else {}
    if traced is not None:
        extra["tracing"] = traced
    route_extra: JSON = {}
    if max_direct_response_bytes is not None:
        # Envoy caps direct-response bodies at 4 KiB unless told otherwise.
        route_extra["max_direct_response_body_size_bytes"] = max_direct_response_bytes
    return {
        "name": HCM,
        "typed_config": {
            "@type": HCM_TYPE,
            "stat_prefix": stat_prefix,
            "codec_type": "AUTO",
            # Only the edge trusts nothing from the client about its address.
            "use_remote_address": edge,
            "generate_request_id": True,
            "access_log": access_log(stat_prefix),
            "route_config": {
                "name": stat_prefix,
                "virtual_hosts": [{"name": stat_prefix, "domains": ["*"], "routes": routes}],
                **route_extra,
            },
            "http_filters": http_filters,
            **extra,
        },
    }


def tracing(service_name: str, sampling_percent: float) -> JSON:
    """The HCM's OpenTelemetry tracer, exporting to the trace collector cluster.
    Envoy starts a trace for `sampling_percent` of the requests that carry none,
    and sends the traceparent upstream, where the services' spans join it."""
    return {
        "random_sampling": {"value": sampling_percent},
        "provider": {
            "name": OTEL_TRACER,
            "typed_config": {
                "@type": OTEL_TRACER_TYPE,
                "grpc_service": {
                    "envoy_grpc": {"cluster_name": TRACE_COLLECTOR},
                    "timeout": "1s",
                },
                "service_name": service_name,
            },
        },
    }


def trace_collector_cluster(address: str, port: int) -> JSON:
    """Where the tracer exports (OTLP/gRPC). Spans are buffered and sent apart
    from requests: a collector that is down loses spans, never a request."""
    return static_cluster(TRACE_COLLECTOR, address, [port], {"connect_timeout": "1s"})


@dataclass(frozen=True)
class LocalTracing:
    """What a local Envoy needs to trace: its HCM's tracing, the cluster it
    exports to, and runtime that flushes spans within half a second (Envoy's
    default, 5 s, would leave `caixa trace` showing half a request)."""

    hcm: JSON
    cluster: JSON
    runtime: JSON


def local_tracing(policy: MeshPolicy, node: str) -> LocalTracing | None:
    """None when the local topology names no trace receiver."""
    receiver = policy.topology.traces
    if receiver is None:
        return None
    return LocalTracing(
        tracing(node, policy.tracing.sampling_percent),
        trace_collector_cluster(policy.topology.address, receiver.otlp_port),
        {"tracing.opentelemetry.flush_interval_ms": 500},
    )


def listener(
    name: str,
    address: str,
    port: int,
    hcm: JSON,
    *,
    outbound: bool = False,
    tls: JSON | None = None,
) -> JSON:
    """`outbound`: a workload's calls out (Istio's outbound listener); its
    spans are named egress. `tls`: the transport socket of an mTLS listener."""
    chain: JSON = {"filters": [hcm], **({"transport_socket": tls} if tls else {})}
    return {
        "name": name,
        "address": socket_address(address, port),
        "filter_chains": [chain],
        **({"traffic_direction": "OUTBOUND"} if outbound else {}),
    }
