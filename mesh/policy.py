"""The mesh policy schema: what lives under `mesh:` in the Helm values.

Keys are camelCase like Helm and Istio values, and every model forbids unknown keys, so a
misspelled `consecutive5xxError` fails loudly instead of silently meaning "default".
Field names follow Istio's DestinationRule/VirtualService where one exists; `envoy_fields`
maps each to the Envoy field Istio's pilot would produce.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from mesh.durations import ZERO, Duration
from mesh.methods import METHOD_NAME, SERVICE_NAME, service_of

UpstreamName = Literal["lancamentos", "consolidado", "fiscal"]

# Envoy's gRPC and HTTP retry conditions (router filter's x-envoy-retry-on and
# x-envoy-retry-grpc-on); anything else would be silently ignored by Envoy.
RetryCondition = Literal[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
]


class Strict(BaseModel):
    """camelCase keys only, unknown keys rejected, immutable once loaded."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        frozen=True,
    )


def _method_name(value: str) -> str:
    if not METHOD_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a gRPC method; write package.Service/Method, "
            "e.g. consolidado.v1.ConsolidadoService/GetDailyBalance"
        )
    return value


def _service_name(value: str) -> str:
    if not SERVICE_NAME.match(value):
        raise ValueError(f"{value!r} is not a gRPC service; write package.Service")
    return value


MethodName = Annotated[str, AfterValidator(_method_name)]
ClassName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
ServiceName = Annotated[str, AfterValidator(_service_name)]
Count = Annotated[int, Field(ge=0, strict=True)]
PositiveCount = Annotated[int, Field(ge=1, strict=True)]
Percent = Annotated[int, Field(ge=0, le=100, strict=True)]
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]


class Backoff(Strict):
    """Envoy's fully jittered exponential backoff between retries."""

    base_interval: Duration
    # Istio can only set the base; Envoy then uses 10x base as the cap.
    max_interval: Duration | None = None

    @property
    def effective_max(self) -> Duration:
        return self.max_interval if self.max_interval is not None else self.base_interval * 10

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.base_interval.millis < 1:
            raise ValueError("baseInterval must be at least 1ms")
        if self.max_interval is not None and self.max_interval < self.base_interval:
            raise ValueError("maxInterval must not be below baseInterval")
        return self


class Retries(Strict):
    """Istio's HTTPRetry. `attempts` counts retries, not tries: 2 means up to 3 tries."""

    attempts: Count
    per_try_timeout: Duration | None = None
    retry_on: tuple[RetryCondition, ...] = ()
    backoff: Backoff | None = None
    # Istio's default: every retry prefers a host not tried yet (previous_hosts).
    retry_other_hosts: bool = True
    retry_remote_localities: bool = False

    @model_validator(mode="after")
    def _istio_floor(self) -> Retries:
        if self.per_try_timeout is not None and self.per_try_timeout.millis < 1:
            raise ValueError("perTryTimeout must be at least 1ms (Istio rejects less)")
        return self


NO_RETRIES = Retries(attempts=0)


class ConnectionPool(Strict):
    """The cluster's circuit breaker thresholds and connect timeout."""

    max_connections: PositiveCount
    max_pending_requests: PositiveCount
    max_requests: PositiveCount
    max_retries: PositiveCount
    connect_timeout: Duration


class RetryBudget(Strict):
    """Retries in flight toward an upstream may be at most `percent` of its requests in
    flight (active and pending), and always `minRetryConcurrency`: Envoy's
    circuit_breakers retry_budget, Istio's trafficPolicy.retryBudget (Istio >= 1.27).
    With it, Envoy ignores connectionPool.maxRetries."""

    percent: Annotated[float, Field(gt=0, le=100)]
    min_retry_concurrency: PositiveCount


class OutlierDetection(Strict):
    """Passive health: eject a replica after consecutive errors.

    Enforcing percentages are explicit because Envoy's defaults differ per detector
    (consecutive 5xx enforces 100%, gateway errors 0%): leaving them implicit is how a
    "configured" detector ends up never ejecting.
    """

    consecutive_5xx_errors: Annotated[int, Field(ge=0, strict=True, alias="consecutive5xxErrors")]
    enforcing_consecutive_5xx_errors: Annotated[
        int, Field(ge=0, le=100, strict=True, alias="enforcingConsecutive5xxErrors")
    ]
    consecutive_gateway_errors: Count
    enforcing_consecutive_gateway_errors: Percent
    interval: Duration
    base_ejection_time: Duration
    # At least 1: Istio leaves 0 unset, and Envoy reads unset as 10%.
    max_ejection_percent: Annotated[int, Field(ge=1, le=100, strict=True)]
    # Envoy's panic threshold: below this share of healthy hosts it balances over all of
    # them, ejected ones included, rather than fail every request. 0 (Istio's default):
    # never, so once every host is out every request fails.
    min_health_percent: Annotated[int, Field(ge=0, le=100, strict=True)] = 0


class FailoverRegions(Strict):
    """Istio's LocalityLoadBalancerSetting.Failover: where `from`'s callers go next."""

    from_: Annotated[str, Field(alias="from", min_length=1)]
    to: Annotated[str, Field(min_length=1)]


class LocalityFailover(Strict):
    """Istio's DestinationRule `loadBalancer.localityLbSetting` (multi-cluster failover).

    Names mirror Istio's. Istio only fails over when outlier detection is set (the linter
    checks); the local mesh has one locality, so locally it changes nothing.
    """

    enabled: bool = True
    failover: tuple[FailoverRegions, ...] = ()
    # Endpoint labels, most significant first (e.g. topology.istio.io/network).
    failover_priority: tuple[Annotated[str, Field(min_length=1)], ...] = ()

    @model_validator(mode="after")
    def _one_kind(self) -> LocalityFailover:
        if self.failover and self.failover_priority:
            raise ValueError("set failover or failoverPriority, not both (Istio rejects both)")
        return self


class HealthCheck(Strict):
    """Active health checks through grpc.health.v1.Health/Check (local Envoy only)."""

    interval: Duration
    timeout: Duration
    unhealthy_threshold: PositiveCount
    healthy_threshold: PositiveCount
    # "" asks for the server as a whole; a service name asks for that service only.
    service_name: str = ""


class RateLimit(Strict):
    """A local token bucket: steady `tokensPerSecond`, bursts up to `burst` requests."""

    tokens_per_second: PositiveCount
    burst: PositiveCount


class RouteClass(Strict):
    """Methods that share one retry/timeout/rate-limit decision."""

    methods: Annotated[tuple[MethodName, ...], Field(min_length=1)]
    idempotent: bool
    # Why the class is (not) idempotent, shown by `caixa-mesh explain`.
    reason: str = ""
    timeout: Duration | None = None
    retries: Retries | None = None
    rate_limit: RateLimit | None = None


class UpstreamPolicy(Strict):
    """Everything a caller's Envoy applies on the way to one service."""

    # The Kubernetes Service the Istio resources name (`host:`).
    host: Annotated[str, Field(min_length=1)]
    # The gRPC services behind it; methods in no route class get the upstream defaults.
    services: Annotated[tuple[ServiceName, ...], Field(min_length=1)]
    timeout: Duration
    # The default that route classes inherit; methods in no class are never retried.
    retries: Retries = NO_RETRIES
    connection_pool: ConnectionPool
    retry_budget: RetryBudget | None = None
    outlier_detection: OutlierDetection | None = None
    health_check: HealthCheck | None = None
    locality_failover: LocalityFailover | None = None
    # Keyed by class name, so an environment overlay can change one class (Helm merges
    # mappings key by key but replaces lists whole). Classes match disjoint methods, so
    # their order does not matter.
    route_classes: dict[ClassName, RouteClass] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_class_per_method(self) -> UpstreamPolicy:
        seen: dict[str, str] = {}
        for class_name, route_class in self.route_classes.items():
            for method in route_class.methods:
                if service_of(method) not in self.services:
                    raise ValueError(
                        f"route class {class_name!r} names {method}, but "
                        f"{service_of(method)} is not in this upstream's services"
                    )
                if method in seen:
                    raise ValueError(
                        f"{method} is in route classes {seen[method]!r} and "
                        f"{class_name!r}; a method belongs to one class"
                    )
                seen[method] = class_name
        return self


class MerchantRateLimit(RateLimit):
    """A token bucket per value of the verified token's `merchants` claim, on every
    authenticated request through the gateway, before the route classes' (global)
    limits. Each gateway Envoy keeps the buckets of its `maxMerchants` most recent
    claim values; a value it evicted starts again with a full bucket."""

    max_merchants: PositiveCount = 10000


class GatewayPolicy(Strict):
    """The edge Envoy: which gRPC services it exposes (gRPC and REST via transcoding)."""

    public_services: Annotated[tuple[ServiceName, ...], Field(min_length=1)]
    merchant_rate_limit: MerchantRateLimit | None = None
    # The largest REST body the transcoder buffers; above it, 413. Each request in
    # flight may hold this much in the gateway's memory.
    max_request_bytes: Annotated[int, Field(ge=64 * 1024, le=64 * 1024 * 1024, strict=True)] = (
        1024 * 1024
    )


class ReplicaPorts(Strict):
    """One local replica: the app's own port, its inbound sidecar's ports, and
    the app's Prometheus /metrics port (unset: it serves none)."""

    app_port: Port
    inbound_port: Port
    inbound_admin_port: Port
    metrics_port: Port | None = None


class ListenerPorts(Strict):
    port: Port
    admin_port: Port


class EgressSidecar(Strict):
    """An outbound sidecar: the listener a workload's gRPC channel points at."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    upstreams: Annotated[tuple[UpstreamName, ...], Field(min_length=1)]
    port: Port
    admin_port: Port
    # With mTLS: the methods its workload may call on those upstreams' inbound
    # sidecars (mesh.render.mtls), as the chart's AuthorizationPolicies grant them.
    calls: tuple[MethodName, ...] = ()


class LocalService(Strict):
    replicas: Annotated[tuple[ReplicaPorts, ...], Field(min_length=1)]


class LocalJwt(Strict):
    """The local gateway's JWT check (Envoy jwt_authn), as the cluster's
    RequestAuthentication: tokens of `issuer` for one of `audiences`, verified
    with the JWKS in `jwks_file`. The services verify the token again."""

    issuer: Annotated[str, Field(min_length=1)]
    audiences: Annotated[tuple[str, ...], Field(min_length=1)]
    jwks_file: Annotated[str, Field(min_length=1)]


class LocalTraces(Strict):
    """The local trace receiver (tooling/devstack/trace_receiver.py): every local
    Envoy and service exports OTLP/gRPC to `otlp_port`; `caixa trace` reads
    `query_port`."""

    otlp_port: Port
    query_port: Port


class LocalMtls(Strict):
    """Mutual TLS on every sidecar-to-sidecar hop of the local mesh, as Istio's
    STRICT PeerAuthentication: each Envoy presents `<certsDir>/<workload>.pem`
    (key `<workload>.key`), issued by `<certsDir>/ca.pem` with the SPIFFE id
    `spiffe://<trustDomain>/ns/<namespace>/sa/caixa-<workload>` (the gateway's:
    Istio's ingress gateway account). `make run` issues them (tooling/devstack/mtls.py)."""

    certs_dir: Annotated[str, Field(min_length=1)]
    trust_domain: Annotated[str, Field(pattern=r"^[a-z0-9.-]+$")] = "caixa.local"
    namespace: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")] = "caixa"


class LocalTopology(Strict):
    """Where the local mesh's processes listen; admin ports are bound to loopback.

    Set in helm/caixa/values-local.yaml alone: the devstack, the tests, the bench
    and the OpenAPI document take their ports from there."""

    address: str
    descriptor: str
    gateway: ListenerPorts
    services: dict[UpstreamName, LocalService]
    egress: tuple[EgressSidecar, ...]
    jwt: LocalJwt | None = None  # unset: the gateway checks no token (the services still do)
    mtls: LocalMtls | None = None  # unset: the sidecars talk plain HTTP/2
    traces: LocalTraces | None = None  # unset: no local Envoy traces
    # Where `make run` starts Prometheus (when one is installed) scraping every
    # service's metrics port and every Envoy's stats; unset: none.
    prometheus_port: Port | None = None

    @model_validator(mode="after")
    def _distinct_ports(self) -> LocalTopology:
        ports = [self.gateway.port, self.gateway.admin_port]
        for service in self.services.values():
            for replica in service.replicas:
                ports += [replica.app_port, replica.inbound_port, replica.inbound_admin_port]
                ports += [replica.metrics_port] if replica.metrics_port else []
        for sidecar in self.egress:
            ports += [sidecar.port, sidecar.admin_port]
        if self.traces is not None:
            ports += [self.traces.otlp_port, self.traces.query_port]
        if self.prometheus_port is not None:
            ports.append(self.prometheus_port)
        clashes = sorted({p for p in ports if ports.count(p) > 1})
        if clashes:
            raise ValueError(f"ports used twice in the local topology: {clashes}")
        return self


class NoLocalTopology(ValueError):
    """A local render was asked of values without `mesh.localTopology`."""


class TracingPolicy(Strict):
    """Which requests the mesh traces: the share of those arriving without a
    trace that start one (Envoy's random_sampling, Istio's
    randomSamplingPercentage). A request that carries a sampled traceparent
    keeps its caller's decision."""

    sampling_percent: Annotated[float, Field(ge=0, le=100)] = 1.0


class MeshPolicy(Strict):
    """The root: `mesh:` in helm/caixa/values.yaml (+ per-environment overrides)."""

    gateway: GatewayPolicy
    upstreams: dict[UpstreamName, UpstreamPolicy]
    tracing: TracingPolicy = TracingPolicy()
    local_topology: LocalTopology | None = None

    @property
    def topology(self) -> LocalTopology:
        """The local topology, which only the local mesh's renders need."""
        if self.local_topology is None:
            raise NoLocalTopology(
                "mesh.localTopology is not set: the local mesh is rendered from "
                "helm/caixa/values-local.yaml too (-f values.yaml -f values-local.yaml)"
            )
        return self.local_topology

    @model_validator(mode="after")
    def _services_resolve(self) -> MeshPolicy:
        owners: dict[str, str] = {}
        for name, upstream in self.upstreams.items():
            for service in upstream.services:
                if service in owners:
                    raise ValueError(f"{service} is served by both {owners[service]} and {name}")
                owners[service] = name
        for service in self.gateway.public_services:
            if service not in owners:
                raise ValueError(
                    f"gateway.publicServices names {service}, which no upstream serves; "
                    "add it to an upstream's services"
                )
        egress = self.local_topology.egress if self.local_topology else ()
        for sidecar in egress:
            for name in sidecar.upstreams:
                if name not in self.upstreams:
                    raise ValueError(
                        f"egress sidecar {sidecar.name!r} calls {name}, not an upstream"
                    )
            for method in sidecar.calls:
                if owners.get(method.split("/")[0]) not in sidecar.upstreams:
                    raise ValueError(
                        f"egress sidecar {sidecar.name!r} calls {method}, which none of "
                        "its upstreams serves"
                    )
        return self


__all__ = [
    "NO_RETRIES",
    "ZERO",
    "Backoff",
    "ConnectionPool",
    "Duration",
    "EgressSidecar",
    "FailoverRegions",
    "GatewayPolicy",
    "HealthCheck",
    "LocalMtls",
    "LocalTopology",
    "LocalityFailover",
    "MerchantRateLimit",
    "MeshPolicy",
    "NoLocalTopology",
    "OutlierDetection",
    "RateLimit",
    "Retries",
    "RetryBudget",
    "RouteClass",
    "UpstreamName",
    "UpstreamPolicy",
]
