"""The chart's DestinationRules/VirtualServices are the mesh policy, on both sides:

- `caixa-mesh render istio` (Python) prints exactly what the chart (Go templates) renders;
- mapped to Envoy fields the way Istio's pilot does (tests/support/istio_pilot.py), they equal
  what `caixa-mesh render envoy` gives the local Envoys: clusters, routes, rate limits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.chart import Object, Rendered
from mesh.cli import main
from mesh.render.bundle import local_envoys
from mesh.render.rate_limit import LOCAL_RATE_LIMIT
from tests.support.chart import TOPOLOGIES, render_chart, render_with
from tests.support.istio_pilot import pilot_cluster, pilot_route, without_local_only
from tests.support.mesh import on_local_ports
from tests.support.paths import CHART_DIR, DESCRIPTOR

TRAFFIC_KINDS = ("DestinationRule", "VirtualService")


def _traffic(objects: list[Object]) -> dict[tuple[str, str], Object]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in TRAFFIC_KINDS}


def _cli_objects(
    files: tuple[Path, ...], capsys: pytest.CaptureFixture[str], *options: str
) -> list[Object]:
    args = [a for path in (CHART_DIR / "values.yaml", *files) for a in ("-f", str(path))]
    capsys.readouterr()
    assert main(["render", "istio", "--chart", str(CHART_DIR), *args, *options]) == 0
    return list(yaml.safe_load_all(capsys.readouterr().out))


def test_cli_prints_what_the_chart_renders(
    topology: str, rendered: Rendered, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = _traffic(_cli_objects(TOPOLOGIES[topology], capsys))
    chart = _traffic(list(rendered))
    assert set(cli) == set(chart)
    for key, obj in chart.items():
        assert cli[key] == obj, key


def test_cli_and_chart_agree_for_another_release_and_namespace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = TOPOLOGIES["onprem"]
    rendered = render_chart(files, release="ledger", namespace="finance")
    cli = _traffic(_cli_objects(files, capsys, "--release", "ledger", "--namespace", "finance"))
    assert cli == _traffic(list(rendered))
    assert {o["metadata"]["namespace"] for o in cli.values()} == {"finance"}


def test_durations_pass_through_identically(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Forms a naive formatter would rewrite ("1500ms" → "1.5s", "1m30s" → "90s").
    overlay = {
        "mesh": {
            "upstreams": {
                "consolidado": {
                    "timeout": "1m30s",
                    "connectionPool": {"connectTimeout": "1500ms"},
                    "outlierDetection": {"interval": "1.5s"},
                }
            }
        }
    }
    rendered = render_with("default", overlay, tmp_path)
    cli = _traffic(_cli_objects((tmp_path / "overlay.yaml",), capsys))
    assert cli == _traffic(list(rendered))
    spec = rendered.get("DestinationRule", "caixa-consolidado")["spec"]["trafficPolicy"]
    assert spec["connectionPool"]["tcp"]["connectTimeout"] == "1500ms"
    assert spec["outlierDetection"]["interval"] == "1.5s"


# --- the same values through pilot's mapping vs the local Envoy render ---

POLICY_CLUSTER_KEYS = (
    "lb_policy",
    "connect_timeout",
    "circuit_breakers",
    "outlier_detection",
    "common_lb_config",
)


def _local(topology: str) -> dict[str, dict[str, Any]]:
    envoys = local_envoys(
        on_local_ports([CHART_DIR / "values.yaml", *TOPOLOGIES[topology]]), DESCRIPTOR
    )
    return {envoy.name: envoy.config for envoy in envoys}


def _virtual_host(config: dict[str, Any]) -> dict[str, Any]:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    host: dict[str, Any] = hcm["typed_config"]["route_config"]["virtual_hosts"][0]
    return host


def _envoy_match(http_match: dict[str, Any]) -> dict[str, Any]:
    """pilot's translateURI: exact → path, prefix → prefix, regex → safe_regex."""
    [(kind, value)] = http_match["uri"].items()
    if kind == "regex":
        return {"safe_regex": {"regex": value}}
    return {{"exact": "path", "prefix": "prefix"}[kind]: value}


def _check_routes(virtual_service: Object, envoy_config: dict[str, Any]) -> None:
    routes = {r["name"]: r for r in _virtual_host(envoy_config)["routes"]}
    http = virtual_service["spec"]["http"]
    assert http, virtual_service["metadata"]["name"]
    for route in http:
        local = routes[route["name"]]
        [match] = route["match"]
        assert _envoy_match(match) == local["match"], route["name"]
        action = {k: v for k, v in local["route"].items() if k != "cluster"}
        assert pilot_route(route) == without_local_only(action), route["name"]
    # Every local route but the catch-alls comes from the VirtualService, in the same
    # order: Istio and Envoy both take the first route that matches.
    local_only = {"not-found", "openapi"}
    in_order = [r["name"] for r in _virtual_host(envoy_config)["routes"]]
    assert [r["name"] for r in http] == [name for name in in_order if name not in local_only]


def test_destination_rules_give_the_local_clusters(topology: str, rendered: Rendered) -> None:
    clusters = {c["name"]: c for c in _local(topology)["gateway"]["static_resources"]["clusters"]}
    for dr in rendered.of_kind("DestinationRule"):
        local = clusters[dr["metadata"]["name"].removeprefix("caixa-")]
        fields = {k: local[k] for k in POLICY_CLUSTER_KEYS if k in local}
        assert pilot_cluster(dr["spec"]) == fields, dr["metadata"]["name"]


def test_virtual_services_give_the_local_routes(topology: str, rendered: Rendered) -> None:
    local = _local(topology)
    _check_routes(rendered.get("VirtualService", "caixa-gateway"), local["gateway"])
    # The dispatcher's egress sidecar is the local caller of the consolidado VS.
    _check_routes(rendered.get("VirtualService", "caixa-consolidado"), local["egress-dispatcher"])


def test_rate_limits_equal_the_local_gateway(topology: str, rendered: Rendered) -> None:
    routes = {r["name"]: r for r in _virtual_host(_local(topology)["gateway"])["routes"]}
    local_limits = {
        name: route["typed_per_filter_config"][LOCAL_RATE_LIMIT]
        for name, route in routes.items()
        if LOCAL_RATE_LIMIT in route.get("typed_per_filter_config", {})
    }
    assert local_limits, "the default values rate-limit consolidado reads"
    patches = rendered.get("EnvoyFilter", "caixa-caixa-local-ratelimit")["spec"]["configPatches"]
    chart_limits = {
        p["match"]["routeConfiguration"]["vhost"]["route"]["name"]: p["patch"]["value"][
            "typed_per_filter_config"
        ][LOCAL_RATE_LIMIT]
        for p in patches
        if p["applyTo"] == "HTTP_ROUTE"
    }
    assert chart_limits == local_limits
    names = {r["name"] for r in rendered.get("VirtualService", "caixa-gateway")["spec"]["http"]}
    assert set(chart_limits) <= names
