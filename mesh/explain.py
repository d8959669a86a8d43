"""`caixa-mesh explain`: the effective policy, route class by route class, in words."""

from __future__ import annotations

from collections.abc import Mapping

from mesh.effective import EffectiveRoute, upstream_routes
from mesh.lint import ejectable_hosts
from mesh.policy import MeshPolicy, UpstreamName

Rows = list[tuple[str, str]]


def _table(rows: Rows, indent: str = "    ") -> list[str]:
    width = max(len(key) for key, _ in rows)
    lines = []
    for key, value in rows:
        first, *rest = value.split("\n")
        lines.append(f"{indent}{key.ljust(width)}  {first}")
        lines += [f"{indent}{' ' * width}  {more}" for more in rest]
    return lines


def _retry_decision(route: EffectiveRoute) -> str:
    why = f" — {route.reason}" if route.reason else ""
    if route.retried:
        return f"yes: idempotent{why}"
    if route.is_default:
        return f"no{why}"
    if not route.idempotent:
        return f"no: not idempotent{why}"
    return f"no: attempts 0{why}"


def route_rows(route: EffectiveRoute, public: set[str]) -> Rows:
    retries = route.retries
    source = "upstream default" if route.retries_inherited else "this class"
    methods = "\n".join(route.methods) if route.methods else f"any other {route.services[0]}/*"
    rows: Rows = [
        ("methods", methods),
        ("timeout", str(route.timeout) if route.timeout.millis else "none (0s)"),
        ("retried", _retry_decision(route)),
    ]
    if route.retried:
        rows += [
            ("tries", f"up to {retries.attempts + 1} (1 + {retries.attempts} retries, {source})"),
            ("per-try timeout", str(retries.per_try_timeout or "none")),
            ("retry on", ", ".join(retries.retry_on) or "Istio's default conditions"),
        ]
        if retries.backoff is not None:
            rows.append(
                (
                    "backoff",
                    f"{retries.backoff.base_interval} base, {retries.backoff.effective_max} cap",
                )
            )
        rows.append(
            (
                "other hosts",
                "each retry prefers a replica not tried yet"
                if retries.retry_other_hosts
                else "a retry may go to the same replica",
            )
        )
    limit = route.rate_limit
    rows.append(
        (
            "rate limit",
            f"{limit.tokens_per_second}/s, burst {limit.burst} (per gateway Envoy)"
            if limit
            else "none",
        )
    )
    at_gateway = any(s in public for s in route.services)
    rows.append(
        ("reachable", "gateway and mesh" if at_gateway else "mesh only (not routed by the gateway)")
    )
    return rows


def upstream_rows(policy: MeshPolicy, name: UpstreamName, replicas: int | None) -> Rows:
    upstream = policy.upstreams[name]
    pool = upstream.connection_pool
    rows: Rows = [
        (
            "circuit breaker",
            f"maxConnections {pool.max_connections}, maxPendingRequests "
            f"{pool.max_pending_requests}, maxRequests {pool.max_requests}, maxRetries "
            f"{pool.max_retries}; connectTimeout {pool.connect_timeout}\n"
            f"overflow → fast UNAVAILABLE; stats cluster.{name}.upstream_rq_pending_overflow, "
            f"upstream_rq_retry_overflow",
        )
    ]
    budget = upstream.retry_budget
    if budget is not None:
        rows.append(
            (
                "retry budget",
                f"retries in flight ≤ {budget.percent:g} % of requests in flight (at least "
                f"{budget.min_retry_concurrency}); maxRetries is then ignored\n"
                f"a retry over it is not sent: the call fails with its last answer; stat "
                f"cluster.{name}.upstream_rq_retry_overflow",
            )
        )
    detection = upstream.outlier_detection
    if detection is None:
        rows.append(("outlier detection", "off"))
    else:
        share = ""
        if replicas is not None:
            count = ejectable_hosts(replicas, detection.max_ejection_percent)
            share = f" ({count} of {replicas} replicas)"
        panic = (
            f"below {detection.min_health_percent}% healthy, balanced over every host (panic)"
            if detection.min_health_percent
            else "no panic threshold: once every host is out, every request fails"
        )
        rows.append(
            (
                "outlier detection",
                f"eject after {detection.consecutive_5xx_errors} consecutive 5xx "
                f"({detection.enforcing_consecutive_5xx_errors}% enforced) or "
                f"{detection.consecutive_gateway_errors} gateway errors "
                f"({detection.enforcing_consecutive_gateway_errors}% enforced)\n"
                f"for {detection.base_ejection_time} × times ejected, swept every "
                f"{detection.interval}, at most {detection.max_ejection_percent}%{share}\n"
                f"{panic}\n"
                f"stats cluster.{name}.outlier_detection.ejections_active, "
                "ejections_enforced_total",
            )
        )
    health = upstream.health_check
    rows.append(
        (
            "health check",
            f"grpc.health.v1 {health.service_name or '(whole server)'} every {health.interval}, "
            f"timeout {health.timeout}, down after {health.unhealthy_threshold} failures, up "
            f"after {health.healthy_threshold} (local Envoy; kubelet probes in Kubernetes)"
            if health
            else "none",
        )
    )
    return rows


def explain(
    policy: MeshPolicy,
    replicas: Mapping[str, int] | None = None,
    only: UpstreamName | None = None,
) -> str:
    public = set(policy.gateway.public_services)
    lines: list[str] = []
    for name, upstream in policy.upstreams.items():
        if only is not None and name != only:
            continue
        count = (replicas or {}).get(name)
        replicas_note = f", {count} replica(s)" if count is not None else ""
        lines.append(f"{name} (Istio host {upstream.host!r}{replicas_note})")
        lines += _table(upstream_rows(policy, name, count), indent="  ")
        for route in upstream_routes(policy, name):
            title = "other methods" if route.is_default else f"route class {route.name}"
            lines += ["", f"  {title}"]
            lines += _table(route_rows(route, public))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
