"""The one place where policy fields become Envoy fields, exactly as Istio's pilot does it.

Sources (istio/istio): `pilot/pkg/networking/core/cluster_traffic_policy.go`
(applyConnectionPool, applyOutlierDetection), `core/route/route.go` (setTimeout) and
`core/route/retry/retry.go` (ConvertPolicy). mesh/README.md has the table. Anything Istio
has no field for (health checks, a backoff cap, rate limits) is marked local-only.
"""

from __future__ import annotations

from typing import Any

from mesh.durations import Duration
from mesh.policy import ConnectionPool, HealthCheck, OutlierDetection, Retries, RetryBudget

JSON = dict[str, Any]

PREVIOUS_HOSTS = "envoy.retry_host_predicates.previous_hosts"
PREVIOUS_HOSTS_TYPE = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)
PREVIOUS_PRIORITIES = "envoy.retry_priorities.previous_priorities"
PREVIOUS_PRIORITIES_TYPE = (
    "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3"
    ".PreviousPrioritiesConfig"
)
# retry.go: "TODO: allow this to be configured via API"; Istio always sends 5.
HOST_SELECTION_RETRY_MAX_ATTEMPTS = 5
# retry.go defaultPolicy(): what an HTTPRetry without retryOn gets.
ISTIO_DEFAULT_RETRY_ON = (
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
)
ISTIO_DEFAULT_RETRIABLE_STATUS_CODES = (503,)


def circuit_breakers(pool: ConnectionPool, budget: RetryBudget | None = None) -> JSON:
    """cluster.circuit_breakers: Istio fills one DEFAULT-priority threshold, tracking remaining.

    tcp.maxConnections→max_connections, http.http1MaxPendingRequests→max_pending_requests,
    http.http2MaxRequests→max_requests, http.maxRetries→max_retries; trafficPolicy.retryBudget
    →retry_budget (budget_percent, min_retry_concurrency), which Envoy then obeys instead
    of max_retries.
    """
    threshold: JSON = {
        "max_connections": pool.max_connections,
        "max_pending_requests": pool.max_pending_requests,
        "max_requests": pool.max_requests,
        "max_retries": pool.max_retries,
        "track_remaining": True,
    }
    if budget is not None:
        threshold["retry_budget"] = {
            "budget_percent": {"value": budget.percent},
            "min_retry_concurrency": budget.min_retry_concurrency,
        }
    return {"thresholds": [threshold]}


def connection_pool_fields(pool: ConnectionPool, budget: RetryBudget | None = None) -> JSON:
    """Istio applies these to outbound *and* inbound clusters."""
    return {
        "connect_timeout": pool.connect_timeout.envoy(),
        "circuit_breakers": circuit_breakers(pool, budget),
    }


def outlier_detection(detection: OutlierDetection) -> JSON:
    """cluster.outlier_detection.

    consecutive5xxErrors→consecutive_5xx, consecutiveGatewayErrors→consecutive_gateway_failure,
    interval, baseEjectionTime→base_ejection_time, maxEjectionPercent→max_ejection_percent.
    Istio sets each enforcing_* to 100 when the count is > 0 and 0 otherwise; the policy
    states them explicitly and the linter holds them to exactly that. Success-rate
    ejection is always off (enforcing_success_rate 0).
    """
    return {
        "consecutive_5xx": detection.consecutive_5xx_errors,
        "enforcing_consecutive_5xx": detection.enforcing_consecutive_5xx_errors,
        "consecutive_gateway_failure": detection.consecutive_gateway_errors,
        "enforcing_consecutive_gateway_failure": detection.enforcing_consecutive_gateway_errors,
        "interval": detection.interval.envoy(),
        "base_ejection_time": detection.base_ejection_time.envoy(),
        "max_ejection_percent": detection.max_ejection_percent,
        "enforcing_success_rate": 0,
    }


def istio_enforcing(consecutive_errors: int) -> int:
    """What Istio would put in enforcing_* for a consecutive-errors count."""
    return 100 if consecutive_errors > 0 else 0


def outlier_lb_fields(detection: OutlierDetection) -> JSON:
    """Istio sets Envoy's panic threshold from outlierDetection.minHealthPercent (0, panic
    routing off, when unset) whenever outlier detection is on."""
    threshold = {"value": detection.min_health_percent}
    return {"common_lb_config": {"healthy_panic_threshold": threshold}}


def outbound_cluster_fields(
    pool: ConnectionPool,
    detection: OutlierDetection | None,
    health: HealthCheck | None,
    budget: RetryBudget | None = None,
) -> JSON:
    fields: JSON = {
        # Istio's default load balancer since 1.14 (defaultLBAlgorithm()).
        "lb_policy": "LEAST_REQUEST",
        **connection_pool_fields(pool, budget),
    }
    if detection is not None:
        fields["outlier_detection"] = outlier_detection(detection)
        fields.update(outlier_lb_fields(detection))
    if health is not None:
        fields["health_checks"] = [grpc_health_check(health)]
    return fields


def grpc_health_check(health: HealthCheck) -> JSON:
    """Local-only: Istio has no active health checks (kubelet's gRPC probes do that job)."""
    return {
        "timeout": health.timeout.envoy(),
        "interval": health.interval.envoy(),
        # Without this Envoy checks an idle cluster only once a minute.
        "no_traffic_interval": health.interval.envoy(),
        "unhealthy_threshold": health.unhealthy_threshold,
        "healthy_threshold": health.healthy_threshold,
        "grpc_health_check": {"service_name": health.service_name},
        "always_log_health_check_failures": True,
    }


def route_timeout_fields(timeout: Duration) -> JSON:
    """route.go setTimeout: VirtualService timeout→route.timeout, and the same value caps the
    client's grpc-timeout header (max_grpc_timeout). 0s disables both."""
    return {"timeout": timeout.envoy(), "max_grpc_timeout": timeout.envoy()}


def retry_policy(retries: Retries) -> JSON | None:
    """retry.go ConvertPolicy. attempts 0 → no retry policy at all."""
    if retries.attempts <= 0:
        return None
    policy: JSON = {
        "num_retries": retries.attempts,
        "host_selection_retry_max_attempts": HOST_SELECTION_RETRY_MAX_ATTEMPTS,
    }
    if retries.retry_on:
        policy["retry_on"] = ",".join(retries.retry_on)
    else:
        policy["retry_on"] = ISTIO_DEFAULT_RETRY_ON
        policy["retriable_status_codes"] = list(ISTIO_DEFAULT_RETRIABLE_STATUS_CODES)
    if retries.per_try_timeout is not None:
        policy["per_try_timeout"] = retries.per_try_timeout.envoy()
    if retries.retry_other_hosts:
        policy["retry_host_predicate"] = [
            {"name": PREVIOUS_HOSTS, "typed_config": {"@type": PREVIOUS_HOSTS_TYPE}}
        ]
    if retries.retry_remote_localities:
        policy["retry_priority"] = {
            "name": PREVIOUS_PRIORITIES,
            "typed_config": {"@type": PREVIOUS_PRIORITIES_TYPE, "update_frequency": 2},
        }
    if retries.backoff is not None:
        back_off: JSON = {"base_interval": retries.backoff.base_interval.envoy()}
        # Local-only: Istio cannot set the cap, Envoy then uses 10x base.
        if retries.backoff.max_interval is not None:
            back_off["max_interval"] = retries.backoff.max_interval.envoy()
        policy["retry_back_off"] = back_off
    return policy


def route_action_fields(timeout: Duration, retries: Retries) -> JSON:
    """Everything a VirtualService HTTPRoute sets on Envoy's RouteAction."""
    fields = route_timeout_fields(timeout)
    policy = retry_policy(retries)
    if policy is not None:
        fields["retry_policy"] = policy
    return fields
