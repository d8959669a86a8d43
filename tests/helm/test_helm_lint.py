"""`helm lint --strict` (Helm's own linter, through helm-python-sdk) finds nothing."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from mesh.chart import user_values
from tests.support.chart import TOPOLOGIES
from tests.support.kubernetes import KUBERNETES_VERSION
from tests.support.paths import CHART_DIR

WARNING = 2  # Helm's support.WarningSev; 1 is informational (e.g. "icon is recommended")


def lint_problems(values: dict[str, Any], kube_version: str = KUBERNETES_VERSION) -> list[str]:
    report = helm_python.lint(str(CHART_DIR), values, strict=True, kube_version=f"v{kube_version}")
    problems = [
        f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= WARNING
    ]
    return problems + [str(e) for e in report["errors"]]


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_chart_lints_clean(topology: str) -> None:
    # lint takes user values; it merges them with values.yaml itself.
    assert lint_problems(user_values(TOPOLOGIES[topology])) == []


def test_lint_reports_schema_violations() -> None:
    problems = lint_problems({"networkPolicy": {"enabeld": True}})
    assert any("enabeld" in p for p in problems), problems
