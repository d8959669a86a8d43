"""The chart's DestinationRules and VirtualServices, mapped the way Istio's pilot maps them
(tests/support/istio_pilot.py), give the Envoy fields mesh.envoy_fields gives the local Envoys,
upstream by upstream and route by route."""

from __future__ import annotations

import re
from typing import Any

from mesh import envoy_fields
from mesh.chart import Rendered
from mesh.effective import upstream_routes
from mesh.methods import load_method_shapes
from mesh.policy import MeshPolicy
from mesh.values import load_values, policy_from_values
from tests.support.chart import TOPOLOGIES
from tests.support.istio_pilot import pilot_cluster, pilot_route, without_local_only
from tests.support.paths import CHART_DIR, DESCRIPTOR


def _policy(topology: str) -> MeshPolicy:
    return policy_from_values(load_values([CHART_DIR / "values.yaml", *TOPOLOGIES[topology]]))


def test_destination_rules_give_the_rendered_clusters(topology: str, rendered: Rendered) -> None:
    policy = _policy(topology)
    for name, upstream in policy.upstreams.items():
        fields = envoy_fields.outbound_cluster_fields(
            upstream.connection_pool,
            upstream.outlier_detection,
            upstream.health_check,
            upstream.retry_budget,
        )
        spec = rendered.get("DestinationRule", f"caixa-{name}")["spec"]
        assert pilot_cluster(spec) == without_local_only(fields), name


def test_virtual_services_give_the_rendered_routes(topology: str, rendered: Rendered) -> None:
    policy = _policy(topology)
    for name in policy.upstreams:
        http = rendered.get("VirtualService", f"caixa-{name}")["spec"]["http"]
        routes = upstream_routes(policy, name)
        assert len(http) == len(routes)
        for spec, route in zip(http, routes, strict=True):
            fields = envoy_fields.route_action_fields(route.timeout, route.retries)
            assert pilot_route(spec) == without_local_only(fields), spec["name"]


def test_gateway_virtual_service_routes_public_services_only(rendered: Rendered) -> None:
    spec = rendered.get("VirtualService", "caixa-gateway")["spec"]
    assert spec["gateways"] == ["caixa-gateway"]
    matched = [m["uri"] for route in spec["http"] for m in route["match"]]
    text = " ".join(str(v) for uri in matched for v in uri.values())
    assert "ConsolidadoIngestService" not in text
    assert re.search(r"GetDailyBalance", text)


def _first_route(http: list[dict[str, Any]], path: str) -> dict[str, Any] | None:
    """The route Envoy takes for `path`: the first whose URI matches (safe_regex is
    anchored on the whole path)."""
    for route in http:
        [match] = route["match"]
        [(kind, value)] = match["uri"].items()
        if (
            (kind == "exact" and path == value)
            or (kind == "prefix" and path.startswith(value))
            or (kind == "regex" and re.fullmatch(value, path))
        ):
            return route
    return None


def test_every_public_rpc_reaches_its_own_service(topology: str, rendered: Rendered) -> None:
    """Through the gateway, each RPC of mesh.gateway.publicServices (fiscal's included)
    lands on its upstream's host, and nothing else is routed."""
    policy = _policy(topology)
    hosts = {
        service: upstream.host
        for upstream in policy.upstreams.values()
        for service in upstream.services
    }
    http = rendered.get("VirtualService", "caixa-gateway")["spec"]["http"]
    public = set(policy.gateway.public_services)
    assert "fiscal.v1.FiscalService" in public
    for rpc in load_method_shapes(DESCRIPTOR):
        service = rpc.split("/")[0]
        route = _first_route(http, f"/{rpc}")
        if service in public:
            assert route is not None, rpc
            [destination] = route["route"]
            assert destination["destination"]["host"] == hosts[service], rpc
        else:
            assert route is None, rpc


def test_non_retried_routes_say_attempts_zero(rendered: Rendered) -> None:
    # Without an explicit 0 Istio applies its default of 2 retries.
    http = rendered.get("VirtualService", "caixa-lancamentos")["spec"]["http"]
    by_name = {route["name"]: route for route in http}
    assert by_name["lancamentos.import"]["retries"] == {"attempts": 0}
    assert by_name["lancamentos.change-feed"]["retries"] == {"attempts": 0}
