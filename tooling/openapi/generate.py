"""Command line: write the OpenAPI document, or check that the committed one is fresh."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from tooling.openapi import descriptors, document

DEFAULT_DESCRIPTOR = Path("build/caixa.pb")
DEFAULT_OUT = Path("openapi/caixa.openapi.json")
COMMAND = "python -m tooling.openapi --descriptor build/caixa.pb --out openapi/caixa.openapi.json"
_DIFF_LINES = 60


def generate(descriptor: Path) -> str:
    """The OpenAPI document, as text, for the services in `descriptor`."""
    return document.render(document.build(descriptors.load(descriptor)))


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
        "--check", action="store_true", help="exit 1 if --out differs from what would be written"
    )
    args = parser.parse_args(argv)
    fresh = generate(args.descriptor)
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
