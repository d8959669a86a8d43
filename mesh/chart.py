"""Render `helm/caixa` with the real Helm engine (helm-python-sdk: Helm v4's Go library).

Values are composed the way `helm template -f a.yaml -f b.yaml --set k=v` does: user files
merge in order (a `null` survives the merge, so it can delete a chart default), `--set`
is parsed by Helm itself, then Helm coalesces the result with the chart's values.yaml and
checks it against values.schema.json.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from mesh.values import deep_merge, read_values

Object = dict[str, Any]


def user_values(files: Sequence[Path] = (), sets: Sequence[str] = ()) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in files:
        values = deep_merge(values, read_values(Path(path)), delete_nulls=False)
    for assignment in sets:
        values = deep_merge(values, helm.parse_set_string(assignment), delete_nulls=False)
    return values


@dataclass(frozen=True)
class Rendered:
    """What `helm template` would print, as objects, with the template each came from."""

    manifests: dict[str, str]
    objects: tuple[Object, ...]

    def of_kind(self, kind: str) -> list[Object]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> Object:
        for obj in self.objects:
            if obj["kind"] == kind and obj["metadata"]["name"] == name:
                return obj
        raise KeyError(f"{kind}/{name} is not rendered")

    def names(self, kind: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.of_kind(kind)}

    def __iter__(self) -> Iterator[Object]:
        return iter(self.objects)


def render_chart(
    chart_dir: Path,
    files: Sequence[Path] = (),
    sets: Sequence[str] = (),
    *,
    release: str = "caixa",
    namespace: str = "caixa",
    revision: int = 1,
) -> Rendered:
    """Raises helm_python's HelmValuesError for values the schema rejects, and
    HelmRenderError when a template fails (e.g. a `required`/`fail` in the chart).
    Revision 1 is an install; a later one an upgrade."""
    values = user_values(files, sets)
    with helm.Chart.load(chart_dir) as chart:
        chart.validate_schema(chart.merge_values(values))
        manifests = chart.render(
            values,
            name=release,
            namespace=namespace,
            revision=revision,
            is_install=revision == 1,
            is_upgrade=revision > 1,
        )
    objects = tuple(
        document
        for path, text in sorted(manifests.items())
        if path.endswith((".yaml", ".yml"))
        for document in yaml.safe_load_all(text)
        if document
    )
    return Rendered(manifests=manifests, objects=objects)
