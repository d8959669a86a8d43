"""Stacked line charts with a shared time axis, as plain SVG: enough for the
README's picture of a scripted run, without a plotting library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 860
LEFT = 70  # room for the y labels
RIGHT = 20
PANEL_HEIGHT = 92
GAP = 34
TOP = 62


@dataclass(frozen=True)
class Panel:
    title: str
    values: Sequence[float | None]
    unit: str


def _nice_top(value: float) -> float:
    """A round upper bound at or above `value`."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10 if value >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _label(value: float) -> str:
    return f"{value:g}" if value < 1000 else f"{value / 1000:g}k"


def chart(
    title: str,
    t: Sequence[float],
    panels: Sequence[Panel],
    *,
    subtitle: str = "",
    shade: tuple[float, float] | None = None,
) -> str:
    span = max(t[-1] if t else 1.0, 1.0)
    inner = WIDTH - LEFT - RIGHT
    height = TOP + len(panels) * (PANEL_HEIGHT + GAP) + 10

    def x(seconds: float) -> float:
        return LEFT + inner * seconds / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="12" font-weight="bold">{escape(title)}</text>',
        f'<text x="{LEFT}" y="36">{escape(subtitle)}</text>',
    ]
    for index, panel in enumerate(panels):
        y0 = TOP + index * (PANEL_HEIGHT + GAP)
        known = [v for v in panel.values if v is not None]
        top = _nice_top(max(known, default=0.0))

        def y(value: float, y0: float = y0, top: float = top) -> float:
            return y0 + PANEL_HEIGHT * (1 - value / top)

        parts.append(
            f'<text x="{LEFT}" y="{y0 - 6}" font-weight="bold">{escape(panel.title)}</text>'
        )
        if shade is not None:
            parts.append(
                f'<rect x="{x(shade[0]):.1f}" y="{y0}" width="{x(shade[1]) - x(shade[0]):.1f}" '
                f'height="{PANEL_HEIGHT}" fill="#f3d9d9"/>'
            )
        parts.append(
            f'<rect x="{LEFT}" y="{y0}" width="{inner}" height="{PANEL_HEIGHT}" '
            'fill="none" stroke="#999"/>'
        )
        for fraction in (0.0, 0.5, 1.0):
            tick = top * fraction
            parts.append(
                f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
                f"{_label(tick)}{escape(panel.unit)}</text>"
            )
        # One polyline per run of known values: a gap where a scrape had none.
        run: list[str] = []
        points: list[tuple[float, float | None]] = [*zip(t, panel.values, strict=True)]
        for seconds, value in [*points, (span, None)]:
            if value is None:
                if len(run) == 1:  # a lone value: a dot, not nothing
                    x_, y_ = run[0].split(",")
                    parts.append(f'<circle cx="{x_}" cy="{y_}" r="2" fill="#1f5fa8"/>')
                elif len(run) > 1:
                    parts.append(
                        f'<polyline points="{" ".join(run)}" fill="none" stroke="#1f5fa8" '
                        'stroke-width="1.6"/>'
                    )
                run = []
            else:
                run.append(f"{x(seconds):.1f},{y(value):.1f}")
    axis = TOP + len(panels) * (PANEL_HEIGHT + GAP) - GAP + 16
    step = next((n for n in (1, 2, 5, 10, 15, 20, 30, 60, 120) if span / n <= 8), 300)
    for tick in range(0, int(span) + 1, step):
        parts.append(f'<text x="{x(tick):.1f}" y="{axis}" text-anchor="middle">{tick} s</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
