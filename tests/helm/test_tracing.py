"""Tracing in the chart: off by default; with a collector named, every service
exports to it and can reach it past the NetworkPolicies and its REGISTRY_ONLY
sidecar, and the proxies trace through Istio's Telemetry API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helm_python import HelmRenderError, HelmValuesError

from mesh.chart import Rendered
from tests.support.chart import render_chart, render_with
from tests.support.istio_crds import object_errors
from tooling.chart.network_policy import Endpoint, Network

NAMESPACE = "caixa"
ENDPOINT = "http://otel-collector.observability.svc.cluster.local:4317"
COLLECTOR_HOST = "observability/otel-collector.observability.svc.cluster.local"
COLLECTOR = Endpoint("otel-collector", "observability", {"app": "otel-collector"})
SERVICES = ("lancamentos", "dispatcher", "consolidado", "fiscal")
ON = [f"tracing.otlpEndpoint={ENDPOINT}", "tracing.istioProvider=otel"]


def _otel_env(rendered: Rendered) -> dict[str, dict[str, str]]:
    found = {}
    for deployment in rendered.of_kind("Deployment"):
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value", "") for e in container["env"]}
        found[deployment["metadata"]["name"]] = {k: v for k, v in env.items() if "OTEL" in k}
    return found


def _pods(rendered: Rendered) -> dict[str, Endpoint]:
    return {
        d["metadata"]["name"]: Endpoint(
            d["metadata"]["name"], NAMESPACE, d["spec"]["template"]["metadata"]["labels"]
        )
        for d in rendered.of_kind("Deployment")
    }


def _sidecar_hosts(rendered: Rendered) -> dict[str, list[str]]:
    return {
        s["metadata"]["name"]: [h for e in s["spec"]["egress"] for h in e["hosts"]]
        for s in rendered.of_kind("Sidecar")
    }


def test_off_by_default() -> None:
    rendered = render_chart()
    assert all(env == {} for env in _otel_env(rendered).values())
    assert rendered.of_kind("Telemetry") == []
    assert all(COLLECTOR_HOST not in hosts for hosts in _sidecar_hosts(rendered).values())
    network = Network(rendered.of_kind("NetworkPolicy"), namespace=NAMESPACE)
    for name, pod in _pods(rendered).items():
        assert not network.allows(pod, COLLECTOR, 4317), name


def test_with_a_collector_every_service_exports_to_it_and_can_reach_it() -> None:
    rendered = render_chart(sets=ON)
    env = _otel_env(rendered)
    assert set(env) == {f"caixa-{s}" for s in SERVICES}
    for service in SERVICES:
        assert env[f"caixa-{service}"] == {
            "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
            "OTEL_SERVICE_NAME": service,
        }
    for name, hosts in _sidecar_hosts(rendered).items():
        assert COLLECTOR_HOST in hosts, name
    network = Network(rendered.of_kind("NetworkPolicy"), namespace=NAMESPACE)
    for name, pod in _pods(rendered).items():
        assert network.allows(pod, COLLECTOR, 4317), name
        # Only the collector's port: the rule opens nothing else to it.
        assert not network.allows(pod, COLLECTOR, 4318), name


def test_the_proxies_trace_through_the_mesh_provider() -> None:
    rendered = render_chart(sets=[*ON, "mesh.tracing.samplingPercent=5"])
    telemetry: dict[str, Any] = {
        t["metadata"]["namespace"]: t for t in rendered.of_kind("Telemetry")
    }
    assert set(telemetry) == {NAMESPACE, "istio-ingress"}
    for obj in telemetry.values():
        assert object_errors(obj) == []
        assert obj["spec"]["tracing"] == [
            {"providers": [{"name": "otel"}], "randomSamplingPercentage": 5}
        ]
    # The workloads' namespace as a whole; in the gateway's, the gateway alone.
    assert "selector" not in telemetry[NAMESPACE]["spec"]
    assert telemetry["istio-ingress"]["spec"]["selector"] == {
        "matchLabels": {"istio": "ingressgateway"}
    }


def test_a_collector_nobody_may_reach_is_refused(tmp_path: Path) -> None:
    overlay = {
        "tracing": {"otlpEndpoint": ENDPOINT},
        "networkPolicy": {"tracing": {"port": 4317, "peers": []}},
    }
    with pytest.raises(HelmRenderError, match=r"networkPolicy\.tracing\.peers is empty"):
        render_with("default", overlay, tmp_path)


@pytest.mark.parametrize(
    "bad",
    [
        "tracing.otlpEndpoint=otel-collector:4317",
        "tracing.samplingRatio=2",
        "lancamentos.env.OTEL_SERVICE_NAME=x",
    ],
)
def test_bad_tracing_values_are_refused(bad: str) -> None:
    with pytest.raises((HelmValuesError, HelmRenderError)):
        render_chart(sets=[*ON, bad])


def test_the_proxies_alone_still_reach_the_collector() -> None:
    """With only the mesh provider named, istiod pushes its cluster to a
    REGISTRY_ONLY sidecar only if the sidecar's egress names the collector."""
    rendered = render_chart(sets=["tracing.istioProvider=otel"])
    assert all(env == {} for env in _otel_env(rendered).values())
    for name, hosts in _sidecar_hosts(rendered).items():
        assert COLLECTOR_HOST in hosts, name
