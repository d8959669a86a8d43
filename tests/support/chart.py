"""The chart under test, rendered by the real Helm engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mesh.chart import Rendered
from mesh.chart import render_chart as render_any_chart
from tests.support.paths import CHART_DIR


def render_chart(
    files: Sequence[Path] = (),
    sets: Sequence[str] = (),
    *,
    release: str = "caixa",
    namespace: str = "caixa",
) -> Rendered:
    """`helm template` of this checkout's `helm/caixa`."""
    return render_any_chart(CHART_DIR, files, sets, release=release, namespace=namespace)
