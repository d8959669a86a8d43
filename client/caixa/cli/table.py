"""Plain-text layouts for terminals: aligned tables and label/value blocks.
Every cell goes through `terminal_safe`, so text from the server (a stored
description, an error message) cannot move the cursor or recolour the screen."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

Row = Sequence[str]

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def terminal_safe(text: str) -> str:
    """`text` with each control character shown as an escape (`\\x1b`, `\\n`)."""
    return _CONTROL_RE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def render_table(
    headers: Row,
    rows: Sequence[Row],
    *,
    right_aligned: Collection[int] = (),
    footer: Row | None = None,
) -> str:
    """Columns padded to their widest cell; `right_aligned` holds column indexes
    (numbers and money read best right-aligned). A footer sits under a rule."""
    width = len(headers)
    for row in [*rows, *([footer] if footer is not None else [])]:
        if len(row) != width:
            raise ValueError(f"row has {len(row)} cells, headers have {width}: {row!r}")
    rows = [[terminal_safe(cell) for cell in row] for row in rows]
    footer = None if footer is None else [terminal_safe(cell) for cell in footer]
    body = [*rows, footer] if footer is not None else list(rows)
    widths = [max(len(cell) for cell in column) for column in zip(headers, *body, strict=True)]

    def line(row: Row) -> str:
        cells = (
            cell.rjust(w) if i in right_aligned else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(headers), rule, *(line(row) for row in rows)]
    if footer is not None:
        lines += [rule, line(footer)]
    return "\n".join(lines)


def render_fields(fields: Sequence[tuple[str, str]]) -> str:
    """`label  value` lines with the values lined up."""
    if not fields:
        return ""
    label_width = max(len(label) for label, _ in fields)
    return "\n".join(
        f"{label.ljust(label_width)}  {terminal_safe(value)}".rstrip() for label, value in fields
    )
