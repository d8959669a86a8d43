"""A user's podAnnotations are laid over the chart's once: their proxy.istio.io/config
is merged into the chart's (theirs wins per field), and a key the chart sets itself is
refused rather than written twice (Kubernetes would keep one of the two, silently)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helm_python.errors import HelmError

from mesh.chart import Rendered
from tests.support.chart import render_with


def _annotations(rendered: Rendered, component: str) -> dict[str, str]:
    deployment = rendered.get("Deployment", f"caixa-{component}")
    found: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
    return found


def _with(pod_annotations: dict[str, Any], tmp_path: Path) -> Rendered:
    return render_with("default", {"consolidado": {"podAnnotations": pod_annotations}}, tmp_path)


def test_a_users_proxy_config_is_merged_into_the_charts(tmp_path: Path) -> None:
    mine = {"concurrency": 2, "terminationDrainDuration": "45s"}
    rendered = _with({"proxy.istio.io/config": json.dumps(mine), "team": "ledger"}, tmp_path)
    annotations = _annotations(rendered, "consolidado")
    proxy = json.loads(annotations["proxy.istio.io/config"])
    assert proxy["concurrency"] == 2
    assert proxy["terminationDrainDuration"] == "45s"  # theirs wins
    assert ".*outlier_detection.*" in proxy["proxyStatsMatcher"]["inclusionRegexps"]  # ours stays
    assert annotations["team"] == "ledger"
    # Only the component that asked.
    others = json.loads(_annotations(rendered, "lancamentos")["proxy.istio.io/config"])
    assert "concurrency" not in others


def test_a_key_the_chart_sets_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HelmError, match=r"consolidado.podAnnotations sets prometheus.io/port"):
        _with({"prometheus.io/port": "1234"}, tmp_path)
