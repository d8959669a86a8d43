"""The Istio specs: strictly valid against Istio's CRD schemas, and Istio's own translation
rules (re-derived here from pilot's Go code) turn them into the Envoy fields we render."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mesh import envoy_fields
from mesh.effective import upstream_routes
from mesh.istio_specs import istio_specs
from mesh.policy import MeshPolicy
from tests.istio_crds import spec_schema, strict_errors
from tests.istio_pilot import pilot_cluster, pilot_route, without_local_only


@pytest.fixture(scope="module")
def spec_schemas() -> dict[str, dict[str, Any]]:
    return {kind: spec_schema(kind) for kind in ("DestinationRule", "VirtualService")}


def test_specs_are_strictly_valid(policy: MeshPolicy, spec_schemas: dict[str, Any]) -> None:
    for key, spec in istio_specs(policy).items():
        kind = key.split("/")[0]
        assert strict_errors(spec_schemas[kind], spec) == [], key


def test_strict_check_catches_a_typo(spec_schemas: dict[str, Any]) -> None:
    spec = {"host": "x", "trafficPolicy": {"outlierDetection": {"consecutive5xxError": 1}}}
    assert strict_errors(spec_schemas["DestinationRule"], spec) == [
        "spec.trafficPolicy.outlierDetection.consecutive5xxError: not in the schema"
    ]


def test_destination_rules_give_the_rendered_clusters(policy: MeshPolicy) -> None:
    specs = istio_specs(policy)
    for name, upstream in policy.upstreams.items():
        rendered = envoy_fields.outbound_cluster_fields(
            upstream.connection_pool, upstream.outlier_detection, upstream.health_check
        )
        assert pilot_cluster(specs[f"DestinationRule/{name}"]) == without_local_only(rendered)


def test_virtual_services_give_the_rendered_routes(policy: MeshPolicy) -> None:
    specs = istio_specs(policy)
    for name in policy.upstreams:
        http = specs[f"VirtualService/{name}"]["http"]
        routes = upstream_routes(policy, name)
        assert len(http) == len(routes)
        for spec, route in zip(http, routes, strict=True):
            rendered = envoy_fields.route_action_fields(route.timeout, route.retries)
            assert pilot_route(spec) == without_local_only(rendered), spec["name"]


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
    assert by_name["lancamentos.import"]["retries"] == {"attempts": 0}
    assert by_name["lancamentos.change-feed"]["retries"] == {"attempts": 0}
