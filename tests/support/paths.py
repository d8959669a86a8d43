"""The checkout under test: the tools take these paths as arguments."""

from __future__ import annotations

from pathlib import Path

from tooling.stack.sources import MeshSources

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "caixa"
VALUES = CHART_DIR / "values.yaml"
VALUES_LOCAL = CHART_DIR / "values-local.yaml"
DESCRIPTOR = REPO_ROOT / "build" / "caixa.pb"
OPENAPI = REPO_ROOT / "openapi" / "caixa.openapi.json"
MESH_SOURCES = MeshSources(REPO_ROOT)
