"""Command line: write the OpenAPI document, or check that the committed one is fresh."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from mesh.values import load_policy
from tooling.openapi import descriptors, document

DEFAULT_DESCRIPTOR = Path("build/caixa.pb")
# Where the local gateway's port is set, which the document names as its server.
DEFAULT_VALUES = (Path("helm/caixa/values.yaml"), Path("helm/caixa/values-local.yaml"))
DEFAULT_OUT = Path("openapi/caixa.openapi.json")
COMMAND = "python -m tooling.openapi --descriptor build/caixa.pb --out openapi/caixa.openapi.json"
_DIFF_LINES = 60


def generate(descriptor: Path, values: Sequence[Path] = DEFAULT_VALUES) -> str:
    """The OpenAPI document, as text, for the services in `descriptor`, served by
    the local gateway of `values`."""
    gateway = load_policy(values).topology.gateway
    server = f"http://localhost:{gateway.port}"
    return document.render(document.build(descriptors.load(descriptor), server))


def stale_diff(current: str, fresh: str, name: str) -> str:
    """A unified diff from `current` to `fresh`, cut short; empty when they are equal."""
    lines = list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            fresh.splitlines(keepends=True),
            fromfile=f"{name} (committed)",
            tofile=f"{name} (generated)",
        )
    )
    if len(lines) > _DIFF_LINES:
        lines = [*lines[:_DIFF_LINES], f"... {len(lines) - _DIFF_LINES} more diff lines\n"]
    return "".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.openapi", description=__doc__)
    parser.add_argument("--descriptor", type=Path, default=DEFAULT_DESCRIPTOR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "-f",
        "--values",
        dest="values",
        action="append",
        type=Path,
        metavar="FILE",
        help="Helm values naming the local gateway's port (default: the chart's "
        "values.yaml and values-local.yaml)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if --out differs from what would be written"
    )
    args = parser.parse_args(argv)
    fresh = generate(args.descriptor, args.values or DEFAULT_VALUES)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current == fresh:
            return 0
        diff = stale_diff(current, fresh, str(args.out))
        print(f"{args.out} is stale; regenerate it with:\n  {COMMAND}\n\n{diff}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(fresh, encoding="utf-8", newline="\n")
    return 0
