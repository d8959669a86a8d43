"""Shared by the chart's Istio tests: which rendered objects are Istio's, and renders
with an overlay written to a file (Helm's --set replaces lists whole per assignment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mesh.chart import Object, Rendered
from tests.support.chart import render_chart

from .conftest import TOPOLOGIES


def istio_objects(rendered: Rendered) -> list[Object]:
    return [o for o in rendered if o["apiVersion"].split("/")[0].endswith(".istio.io")]


def render_with(topology: str, overlay: dict[str, Any], tmp_path: Path) -> Rendered:
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay), encoding="utf-8")
    return render_chart((*TOPOLOGIES[topology], path))
