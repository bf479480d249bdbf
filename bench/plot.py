"""Small SVG charts for docs/benchmarks.md (no plotting library needed).

`line_chart` draws series of (x, y) points on linear axes; `bar_chart` draws groups of
bars. Both return the SVG text; the numbers are printed on the chart as well.
"""

from __future__ import annotations

import math
from html import escape

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
FONT = 'font-family="sans-serif" font-size="12"'
SMALL = 'font-family="sans-serif" font-size="10"'
TITLE = 'font-family="sans-serif" font-size="14" font-weight="bold"'


def nice_max(value: float) -> float:
    """A round upper bound for an axis (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _frame(width: int, height: int, title: str, y_label: str, y_max: float, left: int, top: int,
           plot_w: int, plot_h: int) -> list[str]:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" {TITLE}>{escape(title)}</text>',
        f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" {FONT} transform="rotate(-90 14 {top + plot_h / 2})">{escape(y_label)}</text>',
    ]
    for i in range(6):
        value = y_max * i / 5
        y = top + plot_h - plot_h * i / 5
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{value:g}</text>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="black"/>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="black"/>')
    return parts


def _legend(names: list[str], x: int, y: int, dashed: list[bool] | None = None) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        color = COLORS[i % len(COLORS)]
        dash = ' stroke-dasharray="5,3"' if dashed and dashed[i] else ""
        parts.append(f'<line x1="{x}" y1="{y + 18 * i}" x2="{x + 24}" y2="{y + 18 * i}" stroke="{color}" stroke-width="3"{dash}/>')
        parts.append(f'<text x="{x + 30}" y="{y + 18 * i + 4}" {FONT}>{escape(name)}</text>')
    return parts


def line_chart(title: str, x_label: str, y_label: str, series: dict[str, list[tuple[float, float]]],
               dashed: dict[str, bool] | None = None, width: int = 720, height: int = 380) -> str:
    """One line per series; x values are shown as ticks where points are."""
    left, top, legend_w = 60, 36, 230
    plot_w, plot_h = width - left - legend_w - 20, height - top - 50
    xs = sorted({x for points in series.values() for x, _ in points})
    y_max = nice_max(max((y for points in series.values() for _, y in points), default=1) * 1.05)
    x_min, x_max = (min(xs), max(xs)) if xs else (0, 1)
    span = (x_max - x_min) or 1

    def px(x: float) -> float:
        return left + 20 + (plot_w - 40) * (x - x_min) / span

    def py(y: float) -> float:
        return top + plot_h - plot_h * y / y_max

    parts = _frame(width, height, title, y_label, y_max, left, top, plot_w, plot_h)
    for x in xs:
        parts.append(f'<text x="{px(x):.1f}" y="{top + plot_h + 16}" text-anchor="middle" {FONT}>{x:g}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 12}" text-anchor="middle" {FONT}>{escape(x_label)}</text>')
    names = list(series)
    for i, name in enumerate(names):
        color = COLORS[i % len(COLORS)]
        points = sorted(series[name])
        dash = ' stroke-dasharray="5,3"' if dashed and dashed.get(name) else ""
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.5"{dash}/>')
        for x, y in points:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}"/>')
            parts.append(f'<text x="{px(x) + 5:.1f}" y="{py(y) - 6:.1f}" {SMALL} fill="{color}">{y:.1f}</text>')
    parts += _legend(names, left + plot_w + 24, top + 10, [bool(dashed and dashed.get(n)) for n in names])
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def bar_chart(title: str, y_label: str, groups: list[str], series: dict[str, list[float]],
              width: int = 720, height: int = 340) -> str:
    """For each group (x position), one bar per series, labelled with its value."""
    left, top, legend_w = 60, 36, 230
    plot_w, plot_h = width - left - legend_w - 20, height - top - 50
    y_max = nice_max(max((v for values in series.values() for v in values), default=1) * 1.1)
    names = list(series)
    group_w = plot_w / max(1, len(groups))
    bar_w = group_w * 0.8 / max(1, len(names))
    parts = _frame(width, height, title, y_label, y_max, left, top, plot_w, plot_h)
    for g, group in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        parts.append(f'<text x="{left + g * group_w + group_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" {FONT}>{escape(group)}</text>')
        for s, name in enumerate(names):
            value = series[name][g]
            h = plot_h * value / y_max
            x = x0 + s * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" fill="{COLORS[s % len(COLORS)]}"/>')
            parts.append(f'<text x="{x + bar_w / 2 - 1:.1f}" y="{top + plot_h - h - 4:.1f}" text-anchor="middle" {SMALL}>{value:.1f}</text>')
    parts += _legend(names, left + plot_w + 24, top + 10)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
