"""The Istio specs: strictly valid against Istio's CRD schemas, and Istio's own translation
rules (re-derived here from pilot's Go code) turn them into the Envoy fields we render."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from caixa.mesh import envoy_fields
from caixa.mesh.durations import Duration
from caixa.mesh.effective import upstream_routes
from caixa.mesh.istio_specs import istio_specs
from caixa.mesh.policy import MeshPolicy

from .conftest import REPO_ROOT

CRDS = REPO_ROOT.parent / "shared" / "schemas" / "istio-crds.yaml"


@pytest.fixture(scope="module")
def spec_schemas() -> dict[str, dict[str, Any]]:
    if not CRDS.exists():
        pytest.skip(f"{CRDS} not present")
    schemas = {}
    for crd in yaml.safe_load_all(CRDS.read_text()):
        if crd and crd["spec"]["names"]["kind"] in ("DestinationRule", "VirtualService"):
            version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
            schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
            schemas[crd["spec"]["names"]["kind"]] = schema
    return schemas


def strict_errors(schema: dict[str, Any], value: Any, path: str = "spec") -> list[str]:
    """The subset of OpenAPI v3 Istio's CRDs use, with unknown properties as errors."""
    if value is None and schema.get("nullable"):
        return []
    if schema.get("x-kubernetes-int-or-string"):
        return [] if isinstance(value, int | str) else [f"{path}: int or string"]
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        errors = []
        properties = schema.get("properties")
        for key, item in value.items():
            if properties is not None and key in properties:
                errors += strict_errors(properties[key], item, f"{path}.{key}")
            elif "additionalProperties" in schema:
                errors += strict_errors(schema["additionalProperties"], item, f"{path}.{key}")
            elif properties is not None:
                errors.append(f"{path}.{key}: not in the schema")
        return errors
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        return [
            e
            for i, v in enumerate(value)
            for e in strict_errors(schema["items"], v, f"{path}[{i}]")
        ]
    checks = {"string": str, "boolean": bool, "integer": int, "number": int | float}
    if kind in checks and (
        not isinstance(value, checks[kind]) or (kind == "integer" and isinstance(value, bool))
    ):
        return [f"{path}: not a {kind}"]
    if "maximum" in schema and value > schema["maximum"]:
        return [f"{path}: above {schema['maximum']}"]
    return []


def test_specs_are_strictly_valid(policy: MeshPolicy, spec_schemas: dict[str, Any]) -> None:
    for key, spec in istio_specs(policy).items():
        kind = key.split("/")[0]
        assert strict_errors(spec_schemas[kind], spec) == [], key


def test_strict_check_catches_a_typo(spec_schemas: dict[str, Any]) -> None:
    spec = {"host": "x", "trafficPolicy": {"outlierDetection": {"consecutive5xxError": 1}}}
    assert strict_errors(spec_schemas["DestinationRule"], spec) == [
        "spec.trafficPolicy.outlierDetection.consecutive5xxError: not in the schema"
    ]


# --- Istio's translation, re-derived from pilot (cluster_traffic_policy.go, retry.go) ---


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
    cluster: dict[str, Any] = {
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
        cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": 0}}
    return cluster


def pilot_route(http: dict[str, Any]) -> dict[str, Any]:
    timeout = _duration(http.get("timeout", "0s"))
    action: dict[str, Any] = {"timeout": timeout, "max_grpc_timeout": timeout}
    retries = http.get("retries")
    if retries is not None and retries["attempts"] > 0:
        policy: dict[str, Any] = {
            "num_retries": retries["attempts"],
            "retry_on": retries.get("retryOn", envoy_fields.ISTIO_DEFAULT_RETRY_ON),
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
                    "typed_config": {"@type": envoy_fields.PREVIOUS_HOSTS_TYPE},
                }
            ]
        if retries.get("retryRemoteLocalities"):
            policy["retry_priority"] = {
                "name": "envoy.retry_priorities.previous_priorities",
                "typed_config": {
                    "@type": envoy_fields.PREVIOUS_PRIORITIES_TYPE,
                    "update_frequency": 2,
                },
            }
        if "backoff" in retries:
            policy["retry_back_off"] = {"base_interval": _duration(retries["backoff"])}
        action["retry_policy"] = policy
    return action


def _without_local_only(cluster_or_route: dict[str, Any]) -> dict[str, Any]:
    """Drop what Istio has no field for: health checks, the backoff cap, the LB choice."""
    copy = {k: v for k, v in cluster_or_route.items() if k not in ("health_checks", "lb_policy")}
    back_off = copy.get("retry_policy", {}).get("retry_back_off")
    if back_off:
        back_off.pop("max_interval", None)
    return copy


def test_destination_rules_give_the_rendered_clusters(policy: MeshPolicy) -> None:
    specs = istio_specs(policy)
    for name, upstream in policy.upstreams.items():
        rendered = envoy_fields.outbound_cluster_fields(
            upstream.connection_pool, upstream.outlier_detection, upstream.health_check
        )
        assert pilot_cluster(specs[f"DestinationRule/{name}"]) == _without_local_only(rendered)


def test_virtual_services_give_the_rendered_routes(policy: MeshPolicy) -> None:
    specs = istio_specs(policy)
    for name in policy.upstreams:
        http = specs[f"VirtualService/{name}"]["http"]
        routes = upstream_routes(policy, name)
        assert len(http) == len(routes)
        for spec, route in zip(http, routes, strict=True):
            rendered = envoy_fields.route_action_fields(route.timeout, route.retries)
            assert pilot_route(spec) == _without_local_only(rendered), spec["name"]


def test_gateway_virtual_service_routes_public_services_only(policy: MeshPolicy) -> None:
    spec = istio_specs(policy, "edge")["VirtualService/edge"]
    assert spec["gateways"] == ["edge"]
    matched = [m["uri"] for route in spec["http"] for m in route["match"]]
    text = " ".join(str(v) for uri in matched for v in uri.values())
    assert "ConsolidadoIngestService" not in text
    assert re.search(r"GetDailyBalance", text)


def test_non_retried_routes_say_attempts_zero(policy: MeshPolicy) -> None:
    # Without an explicit 0 Istio applies its default of 2 retries.
    http = istio_specs(policy)["VirtualService/lancamentos"]["http"]
    by_name = {route["name"]: route for route in http}
    assert by_name["import"]["retries"] == {"attempts": 0}
    assert by_name["change-feed"]["retries"] == {"attempts": 0}
