"""Charts as inline SVG, drawn on the server (pure; no JavaScript, no chart library).

Colours come from classes in console.css, so the charts follow the page's theme and the
Content-Security-Policy needs no inline styles. Every chart has a <title> and the numbers
are printed, so it reads without the picture too.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def bars(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    width: int = 360,
    row: int = 22,
    label_width: int = 130,
    css: str = "bar",
) -> Markup:
    """Horizontal bars, one per (label, value), longest first as given."""
    rows = list(items)
    height = max(1, len(rows)) * row + 4
    top = max((v for _, v in rows), default=0) or 1
    span = width - label_width - 48
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(rows):
        y = i * row + 2
        length = max(0.0, value / top * span)
        shown = _number(value)
        parts.append(
            f'<text class="chart-label" x="{label_width - 6}" y="{y + row * 0.68:.1f}" '
            f'text-anchor="end">{escape(label)}</text>'
            f'<rect class="{css}" x="{label_width}" y="{y + 3}" width="{length:.1f}" '
            f'height="{row - 8}" rx="2">'
            f"<title>{escape(label)}: {shown}{escape(unit)}</title></rect>"
            f'<text class="chart-value" x="{label_width + length + 4:.1f}" '
            f'y="{y + row * 0.68:.1f}">{shown}{escape(unit)}</text>'
        )
    if not rows:
        parts.append('<text class="chart-label" x="4" y="16">—</text>')
    parts.append("</svg>")
    return _svg(parts)


def hours(
    columns: Sequence[tuple[int, int]],
    *,
    title: str,
    legend: tuple[str, str],
    width: int = 720,
    height: int = 160,
) -> Markup:
    """24 stacked columns (reports below, greetings above) for the local hours of a day."""
    cols = list(columns) or [(0, 0)] * 24
    top = max((a + b for a, b in cols), default=0) or 1
    plot_h = height - 34
    step = (width - 30) / len(cols)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-value" x="0" y="10">{top}</text>',
        f'<line class="chart-axis" x1="24" y1="{plot_h + 4}" x2="{width}" y2="{plot_h + 4}"/>',
    ]
    for hour, (reports, greetings) in enumerate(cols):
        x = 26 + hour * step
        w = max(1.0, step - 3)
        h_rep = reports / top * plot_h
        h_gre = greetings / top * plot_h
        base = plot_h + 4
        tip = f"{hour:02d}h: {reports} / {greetings}"
        parts.append(
            f'<rect class="bar-report" x="{x:.1f}" y="{base - h_rep:.1f}" width="{w:.1f}" '
            f'height="{h_rep:.1f}"><title>{escape(tip)}</title></rect>'
            f'<rect class="bar-greeting" x="{x:.1f}" y="{base - h_rep - h_gre:.1f}" '
            f'width="{w:.1f}" height="{h_gre:.1f}"><title>{escape(tip)}</title></rect>'
        )
        if hour % 3 == 0:
            parts.append(
                f'<text class="chart-label" x="{x:.1f}" y="{height - 14}">{hour:02d}</text>'
            )
    parts.append(
        f'<rect class="bar-report" x="26" y="{height - 9}" width="10" height="8"/>'
        f'<text class="chart-label" x="40" y="{height - 1}">{escape(legend[0])}</text>'
        f'<rect class="bar-greeting" x="170" y="{height - 9}" width="10" height="8"/>'
        f'<text class="chart-label" x="184" y="{height - 1}">{escape(legend[1])}</text>'
    )
    parts.append("</svg>")
    return _svg(parts)


def duration(seconds: float | None, lang: str) -> str:
    """'45 s', '3 min 20 s', '1 h 05 min' (the same in both languages, short units)."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def _svg(parts: list[str]) -> Markup:
    # Every piece of text in `parts` went through `escape`; the rest is our own markup.
    return Markup("".join(parts))  # noqa: S704


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
