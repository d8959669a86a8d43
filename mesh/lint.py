"""The policy linter: combinations that validate but would hurt in production.

Each rule returns findings naming the values path, what is wrong, and how to fix it.
Formulas (also in mesh/README.md):

- retry budget: (1 + attempts) × perTryTimeout + worst-case backoff ≤ timeout, where
  retry k waits at most min((2^k − 1) × baseInterval, maxInterval) (Envoy's jittered
  exponential backoff; maxInterval defaults to 10 × base);
- retry capacity: retries in flight ≤ 25 % of requests in flight, by a retry budget
  (retryBudget.percent ≤ 25) or, without one, maxRetries ≤ ⌊maxRequests / 4⌋;
- ejectable hosts: ⌊replicas × maxEjectionPercent / 100⌋ (Envoy ejects another host only
  while (ejected + 1) / hosts ≤ maxEjectionPercent); it must stay below `replicas`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from mesh.durations import Duration
from mesh.effective import EffectiveRoute, gateway_routes, upstream_routes
from mesh.envoy_fields import istio_enforcing
from mesh.methods import MethodShape, service_of
from mesh.policy import Backoff, MeshPolicy, OutlierDetection, UpstreamName

# The product rule: the consolidated report holds peaks of 50 requests per second.
REPORT_PEAK_RPS = 50
REPORT_SERVICE = "consolidado.v1.ConsolidadoService"


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (fix: {self.fix})"


def worst_backoff(backoff: Backoff | None, attempts: int) -> Duration:
    base = backoff.base_interval if backoff is not None else Duration(25)  # Envoy's default
    cap = backoff.effective_max if backoff is not None else base * 10
    return Duration(sum(min((2**k - 1) * base.millis, cap.millis) for k in range(1, attempts + 1)))


def ejectable_hosts(replicas: int, max_ejection_percent: int) -> int:
    return replicas * max_ejection_percent // 100


def _retries_path(route: EffectiveRoute) -> str:
    if route.retries_inherited:
        return f"mesh.upstreams.{route.upstream}.retries"
    return f"{route.field_path}.retries"


def check_retry_budget(route: EffectiveRoute) -> list[Finding]:
    retries = route.retries
    if not route.retried:
        return []
    if retries.per_try_timeout is None:
        return [
            Finding(
                "per-try-timeout-missing",
                f"{_retries_path(route)}.perTryTimeout",
                f"route class {route.name!r} retries {retries.attempts}x without a per-try "
                "timeout, so one hung try eats the whole route timeout and no retry happens",
                f"set perTryTimeout to at most timeout / {retries.attempts + 1}",
            )
        ]
    if route.timeout.millis == 0:
        return []
    tries = retries.attempts + 1
    backoff = worst_backoff(retries.backoff, retries.attempts)
    needed = retries.per_try_timeout * tries + backoff
    if needed <= route.timeout:
        return []
    return [
        Finding(
            "retry-budget",
            _retries_path(route),
            f"route class {route.name!r}: {tries} tries × perTryTimeout "
            f"{retries.per_try_timeout} + up to {backoff} backoff = {needed}, beyond the "
            f"route timeout {route.timeout}; the last retries can never finish",
            f"lower attempts or perTryTimeout, or raise the timeout to at least {needed}",
        )
    ]


def check_idempotency(
    route: EffectiveRoute, shapes: Mapping[str, MethodShape] | None
) -> list[Finding]:
    if not route.retried:
        return []
    findings: list[Finding] = []
    if not route.idempotent:
        inherited = " (inherited from the upstream)" if route.retries_inherited else ""
        findings.append(
            Finding(
                "retry-non-idempotent",
                _retries_path(route) if not route.retries_inherited else route.field_path,
                f"route class {route.name!r} is not idempotent but is retried "
                f"{route.retries.attempts}x{inherited}; a retry could apply it twice",
                "set `retries: {attempts: 0}` on the class, or make the RPC idempotent "
                "(a request_id) and mark the class idempotent",
            )
        )
    for method in route.methods:
        shape = (shapes or {}).get(method)
        if shape is not None and shape.streaming:
            findings.append(
                Finding(
                    "retry-streaming",
                    route.field_path,
                    f"{method} is {shape.describe()}: a per-try timeout cuts the stream, and "
                    "Envoy cannot retry once messages have flowed",
                    "move it to a class with `retries: {attempts: 0}`",
                )
            )
    return findings


def check_unknown_methods(
    policy: MeshPolicy, shapes: Mapping[str, MethodShape] | None
) -> list[Finding]:
    if shapes is None:
        return []
    known_services = {service_of(m) for m in shapes}
    findings = []
    for name, upstream in policy.upstreams.items():
        for s_index, service in enumerate(upstream.services):
            if service not in known_services:
                findings.append(
                    Finding(
                        "unknown-service",
                        f"mesh.upstreams.{name}.services[{s_index}]",
                        f"{service} is in no proto; its routes would never match",
                        "fix the name (package.Service) or remove it",
                    )
                )
        for class_name, route_class in upstream.route_classes.items():
            for m_index, method in enumerate(route_class.methods):
                if method not in shapes:
                    findings.append(
                        Finding(
                            "unknown-method",
                            f"mesh.upstreams.{name}.routeClasses.{class_name}.methods[{m_index}]",
                            f"{method} is in no proto; the class would silently not apply",
                            "fix the name (package.Service/Method) against protos/",
                        )
                    )
    return findings


# Retries in flight may be at most this share of requests in flight: in a total
# failure every retry is load on an upstream already failing.
MAX_RETRY_SHARE_PERCENT = 25


def check_retry_capacity(policy: MeshPolicy, name: UpstreamName) -> list[Finding]:
    """Retry capacity that is too large: without a retry budget, maxRetries above
    MAX_RETRY_SHARE_PERCENT of maxRequests; with one, a budget above that share."""
    upstream = policy.upstreams[name]
    if not any(route.retried for route in upstream_routes(policy, name)):
        return []
    pool, budget = upstream.connection_pool, upstream.retry_budget
    cap = MAX_RETRY_SHARE_PERCENT
    if budget is not None:
        if budget.percent <= cap:
            return []
        return [
            Finding(
                "retry-capacity-too-large",
                f"mesh.upstreams.{name}.retryBudget.percent",
                f"retries may be {budget.percent:g} % of the requests in flight; when "
                f"{name} fails, that much more load lands on it",
                f"set it to at most {cap}",
            )
        ]
    allowed = pool.max_requests * cap // 100
    if pool.max_retries <= allowed:
        return []
    return [
        Finding(
            "retry-capacity-too-large",
            f"mesh.upstreams.{name}.connectionPool.maxRetries",
            f"maxRetries {pool.max_retries} lets retries be "
            f"{100 * pool.max_retries // pool.max_requests} % of maxRequests "
            f"{pool.max_requests}; when {name} fails, that much more load lands on it",
            f"set retryBudget (percent at most {cap}), or lower maxRetries to at most {allowed}",
        )
    ]


def check_app_error_ejection(policy: MeshPolicy, name: UpstreamName) -> list[Finding]:
    """Envoy counts a gRPC answer's INTERNAL, UNKNOWN, UNIMPLEMENTED... as 5xx: ejecting on
    those lets one caller's requests, or a rollout's version skew, eject healthy replicas."""
    detection = policy.upstreams[name].outlier_detection
    if detection is None or detection.enforcing_consecutive_5xx_errors == 0:
        return []
    if detection.consecutive_5xx_errors == 0:
        return []
    return [
        Finding(
            "outlier-ejects-on-app-errors",
            f"mesh.upstreams.{name}.outlierDetection.consecutive5xxErrors",
            f"{detection.consecutive_5xx_errors} answers in a row such as INTERNAL or "
            "UNIMPLEMENTED eject a replica: one caller's bad requests, or a rollout's version "
            "skew, can eject healthy replicas and then every one",
            "set consecutive5xxErrors and enforcingConsecutive5xxErrors to 0; "
            "consecutiveGatewayErrors ejects replicas that cannot answer",
        )
    ]


def check_panic_threshold(name: UpstreamName, detection: OutlierDetection) -> list[Finding]:
    """With every host ejectable (locality failover needs maxEjectionPercent 100), only a
    panic threshold keeps traffic flowing once they are all out."""
    if detection.min_health_percent > 0:
        return []
    return [
        Finding(
            "min-health-percent-missing",
            f"mesh.upstreams.{name}.outlierDetection.minHealthPercent",
            f"{name} may eject every host and has no panic threshold: once they are all out, "
            "every request fails, even while some host could answer",
            "set minHealthPercent (e.g. 50)",
        )
    ]


def check_ejection(policy: MeshPolicy, name: UpstreamName, replicas: int | None) -> list[Finding]:
    upstream = policy.upstreams[name]
    detection = upstream.outlier_detection
    if detection is None:
        return []
    enforcing = (
        detection.enforcing_consecutive_5xx_errors > 0
        or detection.enforcing_consecutive_gateway_errors > 0
    )
    if not enforcing:
        return []
    path = f"mesh.upstreams.{name}.outlierDetection.maxEjectionPercent"
    failover = upstream.locality_failover
    if failover is not None and failover.enabled:
        # The other locality's endpoints are hosts of the same cluster, and Envoy caps
        # ejections over the whole cluster, not per locality: below 100 % it may refuse to
        # eject the last failing local replicas, and traffic stays on them. How many
        # remote endpoints there are (one per east-west gateway address) is not known here.
        if detection.max_ejection_percent >= 100:
            return check_panic_threshold(name, detection)
        return [
            Finding(
                "locality-failover-ejection-cap",
                path,
                f"maxEjectionPercent {detection.max_ejection_percent} with locality failover: "
                "Envoy counts the other locality's endpoints in the cap, so it may never eject "
                "every failing local replica, and traffic would not fail over",
                "set it to 100 where localityFailover is enabled (the other locality takes the "
                "traffic)",
            )
        ]
    if replicas is None:
        return []
    ejectable = ejectable_hosts(replicas, detection.max_ejection_percent)
    if ejectable >= replicas and detection.min_health_percent == 0:
        fix = (
            f"lower it to {100 * (replicas - 1) // replicas} or less "
            f"(ejects at most {replicas - 1} of {replicas})"
            if replicas > 1
            else "lower it below 100 (a single replica is then never ejected), or run more"
        )
        return [
            Finding(
                "outlier-ejects-all",
                path,
                f"maxEjectionPercent {detection.max_ejection_percent} with {replicas} "
                f"replica(s) lets outlier detection eject all {replicas}; with panic routing "
                "off (Istio's default) every request then fails",
                fix,
            )
        ]
    if replicas >= 2 and ejectable == 0:
        return [
            Finding(
                "outlier-never-ejects",
                path,
                f"maxEjectionPercent {detection.max_ejection_percent} of {replicas} replicas "
                "rounds down to 0 hosts: a failing replica is never ejected",
                f"raise it to at least {math.ceil(100 / replicas)}",
            )
        ]
    return []


def check_istio_parity(policy: MeshPolicy, name: UpstreamName) -> list[Finding]:
    """Settings the local Envoy would honour but Istio cannot express."""
    upstream = policy.upstreams[name]
    findings: list[Finding] = []
    detection = upstream.outlier_detection
    if detection is not None:
        pairs = (
            (
                "enforcingConsecutive5xxErrors",
                detection.consecutive_5xx_errors,
                detection.enforcing_consecutive_5xx_errors,
            ),
            (
                "enforcingConsecutiveGatewayErrors",
                detection.consecutive_gateway_errors,
                detection.enforcing_consecutive_gateway_errors,
            ),
        )
        for field, count, enforcing in pairs:
            expected = istio_enforcing(count)
            if enforcing != expected:
                findings.append(
                    Finding(
                        "istio-parity",
                        f"mesh.upstreams.{name}.outlierDetection.{field}",
                        f"enforcing {enforcing}% with a threshold of {count}: Istio always "
                        f"sets {expected}% for that, so the cluster would behave differently",
                        f"set it to {expected}",
                    )
                )
    for route in upstream_routes(policy, name):
        backoff = route.retries.backoff
        if (
            route.retried
            and backoff is not None
            and backoff.max_interval is not None
            and backoff.max_interval != backoff.base_interval * 10
        ):
            findings.append(
                Finding(
                    "istio-parity",
                    f"{_retries_path(route)}.backoff.maxInterval",
                    f"maxInterval {backoff.max_interval} differs from 10 × baseInterval "
                    f"({backoff.base_interval * 10}), the only cap Istio can give",
                    f"set it to {backoff.base_interval * 10} or remove it",
                )
            )
    return findings


def check_report_rate_limit(policy: MeshPolicy) -> list[Finding]:
    findings = []
    for name in policy.upstreams:
        for route in upstream_routes(policy, name):
            limit = route.rate_limit
            if limit is None or REPORT_SERVICE not in route.services:
                continue
            if min(limit.tokens_per_second, limit.burst) < REPORT_PEAK_RPS:
                findings.append(
                    Finding(
                        "rate-limit-below-report-peak",
                        f"{route.field_path}.rateLimit",
                        f"consolidado reads limited to {limit.tokens_per_second}/s "
                        f"(burst {limit.burst}), below the {REPORT_PEAK_RPS} rps the report "
                        "must hold",
                        f"set tokensPerSecond and burst to at least {REPORT_PEAK_RPS}",
                    )
                )
    return findings


MERCHANT_LIMIT_PATH = "mesh.gateway.merchantRateLimit"


def check_merchant_rate_limit(policy: MeshPolicy) -> list[Finding]:
    """The per-merchant bucket must let one merchant's report reach its peak, and
    must bind before the shared limits, or it protects no merchant from another."""
    limit = policy.gateway.merchant_rate_limit
    if limit is None:
        return []
    findings = []
    if min(limit.tokens_per_second, limit.burst) < REPORT_PEAK_RPS:
        findings.append(
            Finding(
                "merchant-rate-limit-below-report-peak",
                MERCHANT_LIMIT_PATH,
                f"one merchant is limited to {limit.tokens_per_second}/s (burst "
                f"{limit.burst}), below the {REPORT_PEAK_RPS} rps its report must hold",
                f"set tokensPerSecond and burst to at least {REPORT_PEAK_RPS}",
            )
        )
    for route in gateway_routes(policy):
        shared = route.rate_limit
        if shared is None:
            continue
        for field, mine, theirs in (
            ("tokensPerSecond", limit.tokens_per_second, shared.tokens_per_second),
            ("burst", limit.burst, shared.burst),
        ):
            if mine >= theirs:
                findings.append(
                    Finding(
                        "merchant-rate-limit-never-binds",
                        f"{MERCHANT_LIMIT_PATH}.{field}",
                        f"one merchant's {field} {mine} is at least the {theirs} all "
                        f"merchants share on {route.field_path}: one merchant alone can "
                        "use it all up",
                        f"set it below {theirs}",
                    )
                )
    return findings


def check_locality_failover(policy: MeshPolicy, name: UpstreamName) -> list[Finding]:
    """Istio's pilot ignores localityLbSetting without outlier detection: nothing would
    ever mark the local endpoints unhealthy, so traffic would never fail over."""
    upstream = policy.upstreams[name]
    failover = upstream.locality_failover
    if failover is None or not failover.enabled or upstream.outlier_detection is not None:
        return []
    return [
        Finding(
            "locality-failover-needs-outlier-detection",
            f"mesh.upstreams.{name}.localityFailover",
            f"{name} sets locality failover without outlierDetection; Istio then never "
            "fails over to another locality",
            f"set mesh.upstreams.{name}.outlierDetection, or remove localityFailover",
        )
    ]


ZONE_PINNING = "locality-lb-pins-zone"


def check_locality_ranking(policy: MeshPolicy, name: UpstreamName) -> list[Finding]:
    """Outlier detection turns on Istio's locality load balancing, whose default ranks a
    caller's own zone first: with a replica per zone, each zone's traffic lands on one
    pod, a hot spot the autoscaler's average CPU hides."""
    upstream = policy.upstreams[name]
    if upstream.outlier_detection is None:
        return []
    failover = upstream.locality_failover
    by_region = ("topology.istio.io/network", "topology.kubernetes.io/region")
    if failover is not None and (
        not failover.enabled
        or (failover.failover_priority and set(failover.failover_priority) <= set(by_region))
    ):
        return []
    return [
        Finding(
            ZONE_PINNING,
            f"mesh.upstreams.{name}.localityFailover",
            f"{name} has outlier detection, so Istio balances by locality, and with no "
            "failoverPriority it keeps each caller in its own zone",
            f"set mesh.upstreams.{name}.localityFailover.failoverPriority to "
            "[topology.kubernetes.io/region], so the zones of a region share the load",
        )
    ]


def lint(
    policy: MeshPolicy,
    replicas: Mapping[str, int] | None = None,
    shapes: Mapping[str, MethodShape] | None = None,
) -> list[Finding]:
    """Every finding for a policy. `replicas`: per upstream, the fewest replicas it runs
    (see values.replica_counts); `shapes`: the protos' methods (methods.load_method_shapes)
    — without them the method-name and streaming checks are skipped."""
    findings = check_unknown_methods(policy, shapes)
    for name in policy.upstreams:
        for route in upstream_routes(policy, name):
            findings += check_retry_budget(route)
            findings += check_idempotency(route, shapes)
        findings += check_retry_capacity(policy, name)
        findings += check_ejection(policy, name, (replicas or {}).get(name))
        findings += check_app_error_ejection(policy, name)
        findings += check_istio_parity(policy, name)
        findings += check_locality_failover(policy, name)
        findings += check_locality_ranking(policy, name)
    findings += check_report_rate_limit(policy)
    findings += check_merchant_rate_limit(policy)
    return list(dict.fromkeys(findings))  # identical findings once
