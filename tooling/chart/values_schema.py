"""`helm/caixa/values.schema.json`: hand-written, except its `mesh` part.

The `mesh:` values are the policy `caixa-mesh` reads, and its pydantic model is the one
definition of them. This module writes that model's JSON Schema into the chart's schema
(`properties.mesh` plus `$defs` prefixed `Mesh`), so `helm install` rejects exactly what
`caixa-mesh lint` rejects. `--check` fails when the committed file is stale.

    python -m tooling.chart.values_schema [--chart helm/caixa] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mesh.policy import MeshPolicy

PREFIX = "Mesh"


def _prefixed_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                value.replace("#/$defs/", f"#/$defs/{PREFIX}")
                if key == "$ref" and isinstance(value, str)
                else _prefixed_refs(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_prefixed_refs(item) for item in node]
    return node


def mesh_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The policy's schema and its definitions, refs renamed into the chart's namespace."""
    schema = MeshPolicy.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.pop("$defs", {})
    return _prefixed_refs(schema), {
        f"{PREFIX}{name}": _prefixed_refs(body) for name, body in definitions.items()
    }


def with_mesh(schema: dict[str, Any]) -> dict[str, Any]:
    mesh, definitions = mesh_schema()
    kept = {k: v for k, v in schema.get("$defs", {}).items() if not k.startswith(PREFIX)}
    return {
        **schema,
        "properties": {**schema["properties"], "mesh": mesh},
        "$defs": {**kept, **dict(sorted(definitions.items()))},
    }


def render(path: Path) -> str:
    current = json.loads(path.read_text(encoding="utf-8"))
    return json.dumps(with_mesh(current), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chart", type=Path, default=Path("helm/caixa"), help="the chart folder")
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    schema_path = args.chart / "values.schema.json"
    fresh = render(schema_path)
    if args.check:
        if schema_path.read_text(encoding="utf-8") != fresh:
            print(f"{schema_path} is stale: run python -m tooling.chart.values_schema")
            return 1
        return 0
    schema_path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
