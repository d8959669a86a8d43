"""The files of a checkout that the local stack is rendered from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MeshSources:
    root: Path

    @property
    def chart(self) -> Path:
        return self.root / "helm" / "caixa"

    @property
    def values(self) -> tuple[Path, Path]:
        return (self.chart / "values.yaml", self.chart / "values-local.yaml")

    @property
    def descriptor(self) -> Path:
        return self.root / "build" / "caixa.pb"

    @property
    def openapi(self) -> Path:
        return self.root / "openapi" / "caixa.openapi.json"
