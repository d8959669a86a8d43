"""Istio's translation of DestinationRule/VirtualService fields to Envoy, re-derived from
pilot's Go code (cluster_traffic_policy.go, route.go, retry/retry.go), independently of
mesh.envoy_fields so that the two can check each other."""

from __future__ import annotations

from typing import Any

from mesh.durations import Duration

# Literals from pilot's Go code, not imported from mesh.envoy_fields, which is what
# this module checks.
# retry.go defaultPolicy()
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
PREVIOUS_HOSTS_TYPE = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)
PREVIOUS_PRIORITIES_TYPE = (
    "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3"
    ".PreviousPrioritiesConfig"
)
# cluster_traffic_policy.go: the default load balancer when a DestinationRule sets none.
DEFAULT_LB_POLICY = "LEAST_REQUEST"


def _duration(text: str) -> str:
    return Duration.parse(text).envoy()


def pilot_cluster(dr: dict[str, Any]) -> dict[str, Any]:
    pool = dr["trafficPolicy"]["connectionPool"]
    threshold: dict[str, Any] = {"track_remaining": True}
    if pool["tcp"].get("maxConnections", 0) > 0:
        threshold["max_connections"] = pool["tcp"]["maxConnections"]
    if pool["http"].get("http1MaxPendingRequests", 0) > 0:
        threshold["max_pending_requests"] = pool["http"]["http1MaxPendingRequests"]
    if pool["http"].get("http2MaxRequests", 0) > 0:
        threshold["max_requests"] = pool["http"]["http2MaxRequests"]
    if pool["http"].get("maxRetries", 0) > 0:
        threshold["max_retries"] = pool["http"]["maxRetries"]
    # cluster_traffic_policy.go applyConnectionPool: trafficPolicy.retryBudget.
    budget = dr["trafficPolicy"].get("retryBudget")
    if budget is not None:
        threshold["retry_budget"] = {
            "budget_percent": {"value": float(budget["percent"])},
            "min_retry_concurrency": budget["minRetryConcurrency"],
        }
    cluster: dict[str, Any] = {
        "lb_policy": DEFAULT_LB_POLICY,
        "connect_timeout": _duration(pool["tcp"]["connectTimeout"]),
        "circuit_breakers": {"thresholds": [threshold]},
    }
    od = dr["trafficPolicy"].get("outlierDetection")
    if od is not None:
        out: dict[str, Any] = {"enforcing_success_rate": 0}
        if "consecutive5xxErrors" in od:
            out["consecutive_5xx"] = od["consecutive5xxErrors"]
            out["enforcing_consecutive_5xx"] = 100 if od["consecutive5xxErrors"] > 0 else 0
        if "consecutiveGatewayErrors" in od:
            v = od["consecutiveGatewayErrors"]
            out["consecutive_gateway_failure"] = v
            out["enforcing_consecutive_gateway_failure"] = 100 if v > 0 else 0
        out["interval"] = _duration(od["interval"])
        out["base_ejection_time"] = _duration(od["baseEjectionTime"])
        if od.get("maxEjectionPercent", 0) > 0:
            out["max_ejection_percent"] = od["maxEjectionPercent"]
        cluster["outlier_detection"] = out
        # applyOutlierDetection: minHealthPercent (default 0) is the panic threshold.
        panic = od.get("minHealthPercent", 0)
        cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": panic}}
    return cluster


def pilot_route(http: dict[str, Any]) -> dict[str, Any]:
    timeout = _duration(http.get("timeout", "0s"))
    action: dict[str, Any] = {"timeout": timeout, "max_grpc_timeout": timeout}
    retries = http.get("retries")
    if retries is not None and retries["attempts"] > 0:
        policy: dict[str, Any] = {
            "num_retries": retries["attempts"],
            "retry_on": retries.get("retryOn", DEFAULT_RETRY_ON),
            "host_selection_retry_max_attempts": 5,
        }
        if "retryOn" not in retries:
            policy["retriable_status_codes"] = [503]
        if "perTryTimeout" in retries:
            policy["per_try_timeout"] = _duration(retries["perTryTimeout"])
        if retries.get("retryIgnorePreviousHosts", True):
            policy["retry_host_predicate"] = [
                {
                    "name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": {"@type": PREVIOUS_HOSTS_TYPE},
                }
            ]
        if retries.get("retryRemoteLocalities"):
            policy["retry_priority"] = {
                "name": "envoy.retry_priorities.previous_priorities",
                "typed_config": {
                    "@type": PREVIOUS_PRIORITIES_TYPE,
                    "update_frequency": 2,
                },
            }
        if "backoff" in retries:
            policy["retry_back_off"] = {"base_interval": _duration(retries["backoff"])}
        action["retry_policy"] = policy
    return action


def without_local_only(cluster_or_route: dict[str, Any]) -> dict[str, Any]:
    """Drop what Istio has no field for: active health checks, and the backoff cap, which
    may only restate Envoy's own default (10 x base), since Istio cannot set another."""
    copy = {k: v for k, v in cluster_or_route.items() if k != "health_checks"}
    back_off = copy.get("retry_policy", {}).get("retry_back_off")
    if back_off and "max_interval" in back_off:
        base = Duration.parse(back_off["base_interval"]).millis
        cap = Duration.parse(back_off.pop("max_interval")).millis
        assert cap == 10 * base, f"backoff cap {cap}ms: Istio can only give 10 x {base}ms"
    return copy


def apply_gateway_envoy_filters(
    envoy_filters: list[dict[str, Any]],
    http_filters: list[dict[str, Any]],
    virtual_hosts: list[dict[str, Any]],
) -> None:
    """What Istio does with EnvoyFilters of context GATEWAY, in place: EnvoyFilters in
    priority order (then by name, for equal creation times); HTTP_FILTER patches insert
    relative to a filter already in the chain; HTTP_ROUTE patches MERGE into the route of
    that name (Istio names Envoy routes after the VirtualService's http[].name), in the
    virtual host named if the match names one (a gateway's are "<host>:<port>"). Istio
    skips a patch whose anchor or route is missing; here that fails."""
    ordered = sorted(
        envoy_filters, key=lambda o: (o["spec"].get("priority", 0), o["metadata"]["name"])
    )
    for envoy_filter in ordered:
        name = envoy_filter["metadata"]["name"]
        for patch in envoy_filter["spec"]["configPatches"]:
            assert patch["match"]["context"] == "GATEWAY", name
            operation, value = patch["patch"]["operation"], patch["patch"]["value"]
            if patch["applyTo"] == "HTTP_FILTER":
                chain = patch["match"]["listener"]["filterChain"]["filter"]
                assert chain["name"] == "envoy.filters.network.http_connection_manager"
                anchor = chain["subFilter"]["name"]
                names = [f["name"] for f in http_filters]
                assert anchor in names, f"{name}: {anchor} is not in the chain yet"
                index = names.index(anchor)
                assert operation in ("INSERT_BEFORE", "INSERT_AFTER"), operation
                http_filters.insert(index if operation == "INSERT_BEFORE" else index + 1, value)
            elif patch["applyTo"] == "HTTP_ROUTE":
                vhost = patch["match"]["routeConfiguration"]["vhost"]
                wanted = vhost["route"]["name"]
                matching = [
                    route
                    for host in virtual_hosts
                    if vhost.get("name", host["name"]) == host["name"]
                    for route in host["routes"]
                    if route.get("name") == wanted
                ]
                assert matching, f"{name}: no route {wanted} in virtual host {vhost.get('name')}"
                assert operation == "MERGE", operation
                for route in matching:
                    for key, item in value.items():
                        if isinstance(item, dict):
                            route.setdefault(key, {}).update(item)
                        else:
                            route[key] = item
            else:
                raise AssertionError(f"{name}: {patch['applyTo']} is not modelled")


REGION, ZONE = "topology.kubernetes.io/region", "topology.kubernetes.io/zone"


def _lb_priority(proxy: dict[str, str], endpoint: dict[str, str]) -> int:
    # util.LbPriority (no sub-zones here): 0 same zone, 2 same region, 3 elsewhere.
    if proxy.get(REGION) != endpoint.get(REGION):
        return 3
    return 0 if proxy.get(ZONE) == endpoint.get(ZONE) else 2


def pilot_priorities(
    setting: dict[str, Any] | None, proxy: dict[str, str], endpoints: list[dict[str, str]]
) -> list[int]:
    """The Envoy priority of each endpoint for a caller with `proxy`'s labels, as
    loadbalancer.go's ApplyLocalityLBSetting assigns it once outlier detection is set.
    `setting` is the DestinationRule's localityLbSetting; None is the mesh default
    (locality load balancing on, no failover rules)."""
    order = (setting or {}).get("failoverPriority") or []
    raw = []
    for endpoint in endpoints:
        if order:  # applyPriorityFailoverPerLocality
            priority = next(
                (
                    len(order) - j
                    for j, label in enumerate(order)
                    if proxy.get(label) != endpoint.get(label)
                ),
                0,
            )
        else:  # applyLocalityFailover
            priority = _lb_priority(proxy, endpoint)
            for rule in (setting or {}).get("failover") or []:
                if priority == 3 and rule["from"] == proxy.get(REGION):
                    priority = 3 if endpoint.get(REGION) == rule["to"] else 4
                    break
        raw.append(priority)
    # Priorities run 0..N without gaps.
    rank = {p: i for i, p in enumerate(sorted(set(raw)))}
    return [rank[p] for p in raw]
