"""The chart's DestinationRules and VirtualServices, mapped the way Istio's pilot maps them
(tests/support/istio_pilot.py), give the Envoy fields mesh.envoy_fields gives the local Envoys,
upstream by upstream and route by route."""

from __future__ import annotations

import re

from mesh import envoy_fields
from mesh.chart import Rendered
from mesh.effective import upstream_routes
from mesh.policy import MeshPolicy
from mesh.values import load_values, policy_from_values
from tests.support.chart import TOPOLOGIES
from tests.support.istio_pilot import pilot_cluster, pilot_route, without_local_only
from tests.support.paths import CHART_DIR


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


def test_non_retried_routes_say_attempts_zero(rendered: Rendered) -> None:
    # Without an explicit 0 Istio applies its default of 2 retries.
    http = rendered.get("VirtualService", "caixa-lancamentos")["spec"]["http"]
    by_name = {route["name"]: route for route in http}
    assert by_name["lancamentos.import"]["retries"] == {"attempts": 0}
    assert by_name["lancamentos.change-feed"]["retries"] == {"attempts": 0}
