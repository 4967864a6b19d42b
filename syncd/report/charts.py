"""Charts as inline SVG: the report is one file that needs no script, network or library
to be read, now or in ten years. Each bar carries its label and value as data attributes,
so what a chart shows can be checked without looking at it."""
from __future__ import annotations

from html import escape

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac"]
WIDTH = 720
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _svg(height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{WIDTH}" '
            f'height="{height}" viewBox="0 0 {WIDTH} {height}" {FONT}><title>{escape(title)}</title>'
            + "".join(body) + "</svg>")


def _bar(x: float, y: float, w: float, h: float, colour: str, label: str, value: float, tip: str) -> str:
    return (f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
            f'fill="{colour}" data-label="{escape(label)}" data-value="{value:g}">'
            f'<title>{escape(tip)}</title></rect>')


def hbars(title: str, rows: list[tuple[str, float, str]], maximum: float | None = None,
          colour: str = PALETTE[0]) -> str:
    """One horizontal bar per (label, value, caption), scaled to `maximum` (default: the largest)."""
    top = maximum or max((v for _, v, _ in rows), default=0) or 1
    label_w, row_h = 200, 22
    body = []
    for i, (label, value, caption) in enumerate(rows):
        y = 8 + i * row_h
        w = (WIDTH - label_w - 160) * value / top  # room for the caption after the longest bar
        body.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        body.append(_bar(label_w, y + 2, w, row_h - 6, colour, label, value, f"{label}: {caption}"))
        body.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 14}">{escape(caption)}</text>')
    return _svg(16 + row_h * max(len(rows), 1), title, body)


def grouped_columns(title: str, groups: list[str], series: list[str],
                    values: dict[tuple[str, str], float], maximum: float, captions: dict | None = None) -> str:
    """Columns per group (x axis), one per series (legend), for values between 0 and `maximum`."""
    captions = captions or {}
    plot_h, base, left = 160, 190, 40
    slot = (WIDTH - left - 10) / max(len(groups), 1)
    col_w = min(28.0, (slot - 10) / max(len(series), 1))
    body = [f'<line x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}" stroke="#999"/>',
            f'<text x="{left - 6}" y="{base - plot_h + 4}" text-anchor="end">{maximum:g}</text>',
            f'<text x="{left - 6}" y="{base + 4}" text-anchor="end">0</text>']
    for g, group in enumerate(groups):
        x0 = left + g * slot + (slot - col_w * len(series)) / 2
        for s, name in enumerate(series):
            value = values.get((group, name), 0)
            h = plot_h * value / (maximum or 1)
            tip = f"{name}, {group}: {captions.get((group, name), f'{value:g}')}"
            body.append(_bar(x0 + s * col_w, base - h, col_w - 2, h, PALETTE[s % len(PALETTE)],
                             f"{name}/{group}", value, tip))
        body.append(f'<text x="{left + g * slot + slot / 2:.1f}" y="{base + 16}" '
                    f'text-anchor="middle">{escape(group)}</text>')
    return _svg(base + 30 + _legend(body, series, base + 30), title, body)


def stacked_columns(title: str, categories: list[str], series: dict[str, list[float]]) -> str:
    """A column per category (x axis) stacked by series (legend): counts over time."""
    plot_h, base, left = 160, 190, 40
    totals = [sum(values[i] for values in series.values()) for i in range(len(categories))]
    top = max(totals, default=0) or 1
    slot = (WIDTH - left - 10) / max(len(categories), 1)
    col_w = min(40.0, slot * 0.8)
    body = [f'<line x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}" stroke="#999"/>',
            f'<text x="{left - 6}" y="{base - plot_h + 4}" text-anchor="end">{top:g}</text>',
            f'<text x="{left - 6}" y="{base + 4}" text-anchor="end">0</text>']
    every = max(1, len(categories) // 10)  # at most ~10 axis labels
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - col_w) / 2
        y = base
        for s, (name, values) in enumerate(series.items()):
            h = plot_h * values[i] / top
            y -= h
            if values[i]:
                body.append(_bar(x, y, col_w, h, PALETTE[s % len(PALETTE)], f"{name}/{category}", values[i],
                                 f"{name}, {category}: {values[i]:g}"))
        if i % every == 0:
            body.append(f'<text x="{x + col_w / 2:.1f}" y="{base + 16}" text-anchor="middle">'
                        f'{escape(category)}</text>')
    return _svg(base + 30 + _legend(body, list(series), base + 30), title, body)


def _legend(body: list[str], names: list[str], y: int) -> int:
    """Legend swatches appended to `body` from `y` down; returns the height they take."""
    x, line = 40.0, 0
    for s, name in enumerate(names):
        width = 24 + 7 * len(name)
        if x + width > WIDTH - 10:
            x, line = 40.0, line + 1
        yy = y + line * 18
        body.append(f'<rect x="{x:.1f}" y="{yy}" width="12" height="12" fill="{PALETTE[s % len(PALETTE)]}"/>'
                    f'<text x="{x + 16:.1f}" y="{yy + 10}">{escape(name)}</text>')
        x += width
    return (line + 1) * 18 if names else 0
