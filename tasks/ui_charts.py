"""Server-side charts of the web front end: small line charts as inline SVG text (no JavaScript,
no plotting library in the request path).

:func:`line_chart` draws series over a shared ordered x axis (monitoring runs, oldest first),
optional horizontal reference lines (the PSI thresholds) and an optional band per x point (the
performance tolerance). Every point carries a ``<title>`` (its tooltip in a browser) and a
``data-value`` attribute, so tests read the values that were drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")
"""Series colours, in order (matplotlib's 'tab10' hues, written out)."""


@dataclass
class Series:
    """One line: ``values[i]`` at x label ``i`` (None: no point there; the line is broken)."""

    name: str
    values: list[float | None]
    dashed: bool = False


@dataclass
class Chart:
    """What :func:`line_chart` draws.

    Attributes:
        title: shown above the plot.
        x_labels: one label per x position (e.g. a monitoring run's time and version).
        series: the lines.
        references: ``(label, y)`` horizontal lines (e.g. ``psi_moderate``, ``psi_significant``).
        band: per x position ``(low, high)`` of an accepted region, or None; drawn shaded.
        band_label: the band's legend text.
        y_label: the unit or quantity of the y axis.
    """

    title: str
    x_labels: list[str]
    series: list[Series] = field(default_factory=list)
    references: list[tuple[str, float]] = field(default_factory=list)
    band: list[tuple[float, float] | None] | None = None
    band_label: str = ""
    y_label: str = ""


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def _y_range(chart: Chart) -> tuple[float, float]:
    ys = [v for s in chart.series for v in s.values if _finite(v)] + [y for _, y in chart.references if _finite(y)]
    for b in chart.band or []:
        if b is not None:
            ys += [v for v in b if _finite(v)]
    if not ys:
        return 0.0, 1.0
    lo, hi = min(ys), max(ys)
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.1 or 0.1
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.08
    return (max(0.0, lo - pad) if lo >= 0 else lo - pad), hi + pad  # a non-negative quantity stays above 0


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / (n - 1)
    return [lo + i * step for i in range(n)]


def line_chart(chart: Chart, width: int = 720, height: int = 260) -> str:
    """The chart as one ``<svg>`` element (text, safe to embed: every label is escaped).

    Sizes are in CSS pixels; the plot keeps a 60 px left margin for the y ticks and a legend
    below. With no x label the SVG says "no data". Values that are None or not finite are not
    drawn (the line is broken there).
    """
    left, right, top, bottom = 60, 16, 28, 40
    legend_rows = math.ceil((len(chart.series) + len(chart.references) + (1 if chart.band else 0)) / 4)
    total_h = height + legend_rows * 18
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{total_h}" '
           f'viewBox="0 0 {width} {total_h}" role="img" aria-label="{escape(chart.title)}">',
           f'<text x="{left}" y="16" class="chart-title" font-size="13" font-weight="bold">{escape(chart.title)}</text>']
    n = len(chart.x_labels)
    if n == 0:
        out.append(f'<text x="{left}" y="{height / 2:.0f}" font-size="12">no data</text></svg>')
        return "".join(out)
    lo, hi = _y_range(chart)
    pw, ph = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (pw / 2 if n == 1 else pw * i / (n - 1))

    def y(v: float) -> float:
        return top + ph * (1 - (v - lo) / (hi - lo))

    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>')
    for t in _ticks(lo, hi):
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eee"/>'
                   f'<text x="{left - 6}" y="{y(t) + 4:.1f}" font-size="10" text-anchor="end">{t:.3g}</text>')
    if chart.y_label:
        out.append(f'<text x="12" y="{top + ph / 2:.0f}" font-size="10" transform="rotate(-90 12 {top + ph / 2:.0f})" '
                   f'text-anchor="middle">{escape(chart.y_label)}</text>')
    step = max(1, math.ceil(n / 6))
    for i in range(0, n, step):
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        out.append(f'<text x="{x(i):.1f}" y="{top + ph + 14}" font-size="10" text-anchor="{anchor}">'
                   f'{escape(chart.x_labels[i])}</text>')
    if chart.band:
        pts = [(i, b) for i, b in enumerate(chart.band) if b is not None and all(_finite(v) for v in b)]
        if pts:
            upper = " ".join(f"{x(i):.1f},{y(b[1]):.1f}" for i, b in pts)
            lower = " ".join(f"{x(i):.1f},{y(b[0]):.1f}" for i, b in reversed(pts))
            if len(pts) == 1:  # one point: a short bar
                i, b = pts[0]
                upper = f"{x(i) - 8:.1f},{y(b[1]):.1f} {x(i) + 8:.1f},{y(b[1]):.1f}"
                lower = f"{x(i) + 8:.1f},{y(b[0]):.1f} {x(i) - 8:.1f},{y(b[0]):.1f}"
            out.append(f'<polygon class="band" points="{upper} {lower}" fill="#2ca02c" fill-opacity="0.15" '
                       f'stroke="none"/>')
    for label, ref in chart.references:
        if _finite(ref):
            out.append(f'<line class="reference" data-value="{ref}" x1="{left}" x2="{left + pw}" y1="{y(ref):.1f}" '
                       f'y2="{y(ref):.1f}" stroke="#888" stroke-dasharray="4 3"/>'
                       f'<text x="{left + pw - 4}" y="{y(ref) - 3:.1f}" font-size="10" text-anchor="end" '
                       f'fill="#666">{escape(label)}</text>')
    for k, s in enumerate(chart.series):
        colour = PALETTE[k % len(PALETTE)]
        dash = ' stroke-dasharray="6 3"' if s.dashed else ""
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if _finite(v):
                runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
            elif runs[-1]:
                runs.append([])
        for run in runs:
            if len(run) > 1:
                out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8"{dash} points="{" ".join(run)}"/>')
        for i, v in enumerate(s.values):
            if _finite(v):
                out.append(f'<circle class="point" data-series="{escape(s.name)}" data-value="{v!r}" cx="{x(i):.1f}" '
                           f'cy="{y(v):.1f}" r="3" fill="{colour}"><title>{escape(s.name)} at '
                           f'{escape(chart.x_labels[i])}: {v:.4g}</title></circle>')
    entries = [(s.name, PALETTE[k % len(PALETTE)], "ref" if s.dashed else "line") for k, s in enumerate(chart.series)]
    entries += [(label, "#888", "ref") for label, _ in chart.references]
    if chart.band:
        entries.append((chart.band_label or "accepted band", "#2ca02c", "band"))
    for j, (label, colour, kind) in enumerate(entries):
        lx, ly = left + (j % 4) * (pw / 4), height + (j // 4) * 18
        mark = (f'<rect x="{lx:.1f}" y="{ly - 8}" width="14" height="8" fill="{colour}" fill-opacity="0.3"/>'
                if kind == "band" else
                f'<line x1="{lx:.1f}" x2="{lx + 14:.1f}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"'
                + (' stroke-dasharray="4 3"' if kind == "ref" else "") + "/>")
        out.append(f'{mark}<text x="{lx + 18:.1f}" y="{ly}" font-size="10">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


EVENT_COLOURS = {"promoted": "#2ca02c", "registered": "#1f77b4", "rejected": "#d62728", "stopped": "#d62728",
                 "rolled_back": "#ff7f0e", "champion_retired": "#8c564b", "pending": "#bcbd22", "approved": "#2ca02c",
                 "expired": "#d62728", "approval_refused": "#e377c2"}
"""Marker colour of each history event kind in :func:`timeline`; other kinds are grey."""


def timeline(events: list[dict], width: int = 900) -> str:
    """The history as a strip: one marker per event (``ts``, ``event``, ``version``), oldest on the
    left, evenly spaced (the table beside it has the times), labels alternating above and below;
    each marker's ``<title>`` gives the time and the event. Returns one ``<svg>`` element."""
    n, height, mid = len(events), 110, 55
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="history">']
    if n == 0:
        out.append('<text x="10" y="55" font-size="12">no history yet</text></svg>')
        return "".join(out)
    left, right = 60, width - 60
    out.append(f'<line x1="{left - 20}" x2="{right + 20}" y1="{mid}" y2="{mid}" stroke="#999"/>')
    for i, e in enumerate(events):
        x = (left + right) / 2 if n == 1 else left + (right - left) * i / (n - 1)
        kind = str(e.get("event"))
        label = f"{kind.replace('_', ' ')}" + (f" v{e['version']}" if e.get("version") is not None else "")
        y = mid - 14 if i % 2 == 0 else mid + 24
        out.append(f'<circle class="event" data-event="{escape(kind)}" cx="{x:.1f}" cy="{mid}" r="6" '
                   f'fill="{EVENT_COLOURS.get(kind, "#7f7f7f")}"><title>{escape(str(e.get("ts") or ""))}: '
                   f'{escape(label)}</title></circle>'
                   f'<text x="{x:.1f}" y="{y}" font-size="11" text-anchor="middle">{escape(label)}</text>'
                   f'<text x="{x:.1f}" y="{y + (-12 if i % 2 == 0 else 12)}" font-size="9" fill="#666" '
                   f'text-anchor="middle">{escape(str(e.get("ts") or "")[:10])}</text>')
    out.append("</svg>")
    return "".join(out)
