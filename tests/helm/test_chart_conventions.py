"""What users of any Helm chart expect of this one: `helm show readme` finds its
README, the install prints NOTES that say what to check and what is off, and
every object says which part of Caixa it belongs to."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest

from tests.support.chart import TOPOLOGIES, render_chart, render_with
from tests.support.paths import CHART_DIR


def test_the_readme_is_in_the_chart() -> None:
    """Helm packages it with the chart, where `helm show readme` reads it."""
    with helm.Chart.load(CHART_DIR) as chart:
        readme = {f["name"]: f["data"] for f in chart.files}.get("README.md", "")
    assert readme.startswith("# Installing Caixa on Kubernetes")


def _notes(sets: list[str]) -> str:
    rendered = render_chart(sets=sets)
    [notes] = [text for path, text in rendered.manifests.items() if path.endswith("NOTES.txt")]
    return notes


def test_the_notes_say_what_to_check_and_what_is_off() -> None:
    notes = _notes([])
    assert (
        "rollout status deploy/caixa-lancamentos deploy/caixa-dispatcher deploy/caixa-consolidado"
        " deploy/caixa-fiscal" in notes
    )
    assert "alerts    off: monitoring.prometheusRule.enabled=true" in notes
    assert "traces    off: tracing.otlpEndpoint" in notes
    # The one warning of the defaults: no digest is known until an image is built.
    assert [line for line in notes.splitlines() if "WARNING" in line] == [
        line for line in notes.splitlines() if "WARNING: the image is pinned by tag only" in line
    ]
    on = _notes(
        [
            "monitoring.podMonitor.enabled=true",
            "monitoring.prometheusRule.enabled=true",
            "tracing.otlpEndpoint=http://collector:4317",
            "networkPolicy.enabled=false",
        ]
    )
    assert "PodMonitor scrapes" in on and "PrometheusRule with" in on
    assert "exported to http://collector:4317" in on
    assert "WARNING: networkPolicy.enabled=false" in on


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_every_object_names_its_component(topology: str, tmp_path: Path) -> None:
    monitoring = {
        "monitoring": {"podMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}
    }
    for obj in render_with(topology, monitoring, tmp_path):
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/component"), where
        assert labels.get("app.kubernetes.io/part-of") == "caixa", where
