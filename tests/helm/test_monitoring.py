"""The alerts, the dashboard and the chart's monitoring objects.

The alert rules are tested with `promtool test rules` (tests/helm/alerts/), which
fires each alert from the series a real incident would leave and checks that a
healthy system fires none. The rules and the dashboard may only read metrics
the services export, Envoy's stats (which the chart asks the sidecars to
expose) or the rules' own recordings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

# Imported for the metrics they register.
import services.consolidado.cache
import services.consolidado.ingest
import services.platform.database
import services.platform.outbox.dispatcher
import services.platform.rpc_metrics  # noqa: F401
from mesh.chart import Rendered
from tests.support.chart import render_chart
from tests.support.paths import CHART_DIR, REPO_ROOT

ALERTS = CHART_DIR / "files" / "alerts.yaml"
DASHBOARD = CHART_DIR / "files" / "dashboard.json"
ALERT_TESTS = REPO_ROOT / "tests" / "helm" / "alerts" / "alerts.test.yaml"
METRIC = re.compile(r"\b(?:grpc_server_|caixa_|caixa:|envoy_)[a-zA-Z0-9_:]*")
MONITORING_ON = [
    "monitoring.podMonitor.enabled=true",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.dashboard.enabled=true",
    "monitoring.labels.release=kube-prometheus-stack",
]


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool missing (apt-get install prometheus)"
        if os.environ.get("CAIXA_REQUIRE_PROMTOOL"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _run(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def _exported() -> set[str]:
    """Every sample name the services can export."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    names = set()
    for family in REGISTRY.collect():
        for suffix in suffixes.get(family.type, [""]):
            names.add(family.name + suffix)
    return names


def test_the_rules_are_valid_and_pass_their_promtool_tests() -> None:
    checked = _run("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _run("test", "rules", ALERT_TESTS.name, cwd=ALERT_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    cases = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {c["alertname"] for t in cases for c in t["alert_rule_test"] if c["exp_alerts"]}
    quiet = {c["alertname"] for t in cases for c in t["alert_rule_test"] if not c["exp_alerts"]}
    assert fired == alerts
    assert quiet == alerts
    for rule in _rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:panel_{n}", "expr": expr.replace("$namespace", "caixa")}
        for n, expr in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "dashboard-exprs.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = _run("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rules_and_dashboard_read_only_metrics_that_exist() -> None:
    exported = _exported()
    recorded = {r["record"] for r in _rules() if "record" in r}
    used = {m for r in _rules() for m in METRIC.findall(r["expr"])}
    used |= {m for e in _dashboard_exprs() for m in METRIC.findall(e)}
    ours = {m for m in used if not m.startswith("envoy_")}
    assert ours - exported - recorded == set()
    assert {m for m in used if m.startswith("caixa_consolidation_lag")} <= exported


def _kinds(rendered: Rendered, kind: str) -> list[dict[str, Any]]:
    return [o for o in rendered if o["kind"] == kind]


def test_monitoring_objects_are_off_by_default() -> None:
    rendered = render_chart()
    assert _kinds(rendered, "PodMonitor") == _kinds(rendered, "PrometheusRule") == []
    names = [c["metadata"]["name"] for c in _kinds(rendered, "ConfigMap")]
    assert not any("dashboard" in name for name in names)


def test_the_pod_monitor_scrapes_every_service_and_its_sidecar() -> None:
    rendered = render_chart(sets=MONITORING_ON)
    [monitor] = _kinds(rendered, "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    wanted = monitor["spec"]["selector"]["matchLabels"]
    deployments = _kinds(rendered, "Deployment")
    assert {d["metadata"]["name"] for d in deployments} == {
        "caixa-lancamentos",
        "caixa-dispatcher",
        "caixa-consolidado",
        "caixa-fiscal",
    }
    for deployment in deployments:
        pod = deployment["spec"]["template"]
        assert wanted.items() <= pod["metadata"]["labels"].items()
        [container] = pod["spec"]["containers"]
        assert "metrics" in {p["name"] for p in container["ports"]}
        # Istio's injected istio-proxy names its Envoy stats port http-envoy-prom.
        proxy = json.loads(pod["metadata"]["annotations"]["proxy.istio.io/config"])
        patterns = proxy["proxyStatsMatcher"]["inclusionRegexps"]
        for stat in (
            "cluster.outbound|50051||consolidado.caixa.svc.cluster.local.circuit_breakers.default.rq_open",
            "cluster.outbound|50051||consolidado.caixa.svc.cluster.local.upstream_rq_pending_overflow",
            "cluster.outbound|50051||consolidado.caixa.svc.cluster.local.upstream_rq_retry",
            "cluster.outbound|50051||consolidado.caixa.svc.cluster.local.outlier_detection.ejections_active",
        ):
            assert any(re.fullmatch(p, stat) for p in patterns), stat
    endpoints = {(e["port"], e["path"]) for e in monitor["spec"]["podMetricsEndpoints"]}
    assert endpoints == {("metrics", "/metrics"), ("http-envoy-prom", "/stats/prometheus")}


def test_the_rule_and_the_dashboard_are_the_files_as_tested() -> None:
    rendered = render_chart(sets=MONITORING_ON)
    [rule] = _kinds(rendered, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    [dashboard] = [c for c in _kinds(rendered, "ConfigMap") if "dashboard" in c["metadata"]["name"]]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["caixa.json"]) == json.loads(DASHBOARD.read_text())


JOB_MATCHER = re.compile(r'\bjob\s*(=|!=)\s*"([^"]*)"')


def test_the_outboxes_are_told_apart_by_the_job_the_pod_monitor_gives() -> None:
    """The dispatcher's and fiscal's outboxes export the same gauges; the PodMonitor makes
    each series' job its workload's name, and the rules and the dashboard name those jobs
    (the ledger's alerts every job but fiscal's, so no outbox is left unwatched)."""
    rendered = render_chart(sets=MONITORING_ON)
    [monitor] = _kinds(rendered, "PodMonitor")
    label = monitor["spec"]["jobLabel"]
    jobs = {
        d["spec"]["template"]["metadata"]["labels"][label] for d in _kinds(rendered, "Deployment")
    }
    assert jobs == {"lancamentos", "dispatcher", "consolidado", "fiscal"}
    named = {job for r in _rules() for _, job in JOB_MATCHER.findall(r["expr"])}
    named |= {job for e in _dashboard_exprs() for _, job in JOB_MATCHER.findall(e)}
    assert named and named <= jobs, named - jobs
    outbox = [r for r in _rules() if "alert" in r and "caixa_outbox_" in r["expr"]]
    by_job: dict[str, list[str]] = {}
    for rule in outbox:
        [(op, job)] = JOB_MATCHER.findall(rule["expr"])
        by_job.setdefault(f"{op}{job}", []).append(rule["alert"])
    # Each outbox alert of the ledger has its twin for fiscal, and they split the jobs.
    assert set(by_job) == {"!=fiscal", "=fiscal"}
    assert len(by_job["!=fiscal"]) == len(by_job["=fiscal"]) == 3
