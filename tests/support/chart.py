"""The chart under test, rendered by the real Helm engine, and its topologies."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mesh.chart import Object, Rendered
from mesh.chart import render_chart as render_any_chart
from tests.support.paths import CHART_DIR


def render_chart(
    files: Sequence[Path] = (),
    sets: Sequence[str] = (),
    *,
    release: str = "caixa",
    namespace: str = "caixa",
    revision: int = 1,
) -> Rendered:
    """`helm template` of this checkout's `helm/caixa`."""
    return render_any_chart(
        CHART_DIR, files, sets, release=release, namespace=namespace, revision=revision
    )


# name → the values files layered over the chart's values.yaml, like `helm -f`.
TOPOLOGIES: dict[str, tuple[Path, ...]] = {
    "default": (),
    "cloud": (CHART_DIR / "values-cloud.yaml",),
    "onprem": (CHART_DIR / "values-onprem.yaml",),
}


def istio_objects(rendered: Rendered) -> list[Object]:
    return [o for o in rendered if o["apiVersion"].split("/")[0].endswith(".istio.io")]


def render_with(topology: str, overlay: dict[str, Any], tmp_path: Path) -> Rendered:
    """A topology's render with `overlay` as one more values file (Helm's --set
    replaces lists whole per assignment, so overlays go through a file)."""
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay), encoding="utf-8")
    return render_chart((*TOPOLOGIES[topology], path))
