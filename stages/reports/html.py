"""Self-contained HTML pages with inline SVG charts, for the reports people open in a browser.

    page = document("ftpipe run", "model 3: promote", [section("Metrics", table(["a"], [["1"]]))])
    chart = bar_chart("per_class", ["sports", "tech"], {"f1": [0.9, 0.8]}, "F1 per class")

The pages are read offline (a file opened from disk, an MLflow artifact, a CI attachment): no script, no
font, no stylesheet or image is fetched from anywhere; the charts are SVG drawn here. Every text that
reaches the page (labels, model names, reasons: they come from the user's data and params) goes through
`esc`, so a label such as `<script>` shows as text. Each chart is an `<svg data-chart="NAME">` with its
marks (rect, circle, polyline) inside, which the browser test finds and measures. Pure: no I/O.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

PALETTE = ("#3b6ea8", "#e08a2c", "#4a9a5b", "#c0504d", "#8064a2", "#4bacc6", "#9b8c3a", "#7f7f7f")
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:70rem;
color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.sub{color:#555;margin-top:0}table{border-collapse:collapse;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#2e7d32}.warn{color:#b26a00}.fail{color:#c62828}.skip,.insufficient{color:#777}
svg{display:block;margin:.5rem 0;overflow:visible}svg text{font-size:11px;fill:#333}
.legend span{display:inline-block;margin-right:1rem}.legend i{display:inline-block;width:.8em;height:.8em;
margin-right:.3em}
"""


def esc(value: object) -> str:
    """`value` as HTML text: `<`, `>`, `&` and both quotes escaped (safe in an attribute too)."""
    return html.escape(str(value), quote=True)


def fmt(value: object, digits: int = 4) -> str:
    """A number for a table cell (`-` for None or NaN), anything else as text; not yet escaped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def document(title: str, headline: str, sections: Sequence[str]) -> str:
    """The whole page: `<title>`, the headline under the title, then the sections (already HTML)."""
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        # no network, whatever the page holds: the browser refuses any fetch the markup might ask for
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
        'img-src data:">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n<body>\n<h1>{esc(title)}</h1>\n"
        f"<p class='sub'>{esc(headline)}</p>\n{body}\n</body></html>\n"
    )


def section(title: str, *parts: str) -> str:
    """One `<h2>` and its parts (HTML)."""
    return f"<section><h2>{esc(title)}</h2>\n" + "\n".join(parts) + "\n</section>"


def paragraph(text: str, css: str = "") -> str:
    """A paragraph of plain text (escaped)."""
    cls = f" class='{esc(css)}'" if css else ""
    return f"<p{cls}>{esc(text)}</p>"


def outcome(word: str) -> str:
    """An outcome word (pass | warn | fail | skip | ...) coloured by its class."""
    return f"<span class='{esc(word)}'>{esc(word)}</span>"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], raw_columns: Sequence[int] = ()) -> str:
    """A table of texts and numbers; numbers right-aligned. Columns in `raw_columns` hold HTML already
    escaped by the caller (an `outcome` span); every other cell is escaped here."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            number = isinstance(cell, int | float) and not isinstance(cell, bool)
            text = str(cell) if i in raw_columns else esc(fmt(cell))
            cells.append(f"<td class='n'>{text}</td>" if number else f"<td>{text}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def legend(names: Sequence[str]) -> str:
    """The colour of each series, in PALETTE order."""
    spans = "".join(
        f"<span><i style='background:{PALETTE[i % len(PALETTE)]}'></i>{esc(n)}</span>"
        for i, n in enumerate(names)
    )
    return f"<div class='legend'>{spans}</div>"


def _svg(name: str, width: int, height: int, title: str, marks: Sequence[str]) -> str:
    return (
        f"<svg data-chart='{esc(name)}' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' aria-label='{esc(title)}'><title>{esc(title)}</title>"
        + "".join(marks)
        + "</svg>"
    )


def _text(x: float, y: float, text: object, anchor: str = "middle", extra: str = "") -> str:
    return f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}'{extra}>{esc(text)}</text>"


def _y_axis(left: int, top: int, plot_h: int, right: int, y_max: float) -> list[str]:
    """Four grid lines with their values, from 0 to `y_max`."""
    marks = []
    for k in range(5):
        v = y_max * k / 4
        y = top + plot_h - plot_h * k / 4
        marks.append(f"<line x1='{left}' x2='{right}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e3e3e3'/>")
        marks.append(_text(left - 4, y + 4, f"{v:.3g}", "end"))
    return marks


def bar_chart(
    name: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    title: str,
    y_max: float | None = None,
) -> str:
    """Grouped vertical bars: one group per category, one bar per series (None: no bar), with a legend."""
    names = list(series)
    top_value = max((v for vals in series.values() for v in vals if v is not None), default=0.0)
    y_max = y_max or (top_value * 1.1 if top_value > 0 else 1.0)
    left, top, plot_h = 48, 12, 180
    group_w = max(18 * len(names) + 14, 48)
    width = left + group_w * max(len(categories), 1) + 10
    marks = _y_axis(left, top, plot_h, width - 10, y_max)
    bar_w = (group_w - 14) / max(len(names), 1)
    for c, cat in enumerate(categories):
        x0 = left + c * group_w + 7
        for s, sname in enumerate(names):
            v = series[sname][c]
            if v is None:
                continue
            h = max(plot_h * min(max(v, 0.0), y_max) / y_max, 1.0)  # a zero shows as a hairline
            marks.append(
                f"<rect x='{x0 + s * bar_w:.1f}' y='{top + plot_h - h:.1f}' width='{max(bar_w - 1, 1):.1f}' "
                f"height='{h:.1f}' fill='{PALETTE[s % len(PALETTE)]}'><title>{esc(cat)}, {esc(sname)}: "
                f"{esc(fmt(v))}</title></rect>"
            )
        label_x = x0 + (group_w - 14) / 2
        marks.append(
            _text(
                label_x,
                top + plot_h + 14,
                cat,
                "end",
                f" transform='rotate(-30 {label_x:.1f} {top + plot_h + 14})'",
            )
        )
    svg = _svg(name, width, top + plot_h + 80, title, marks)
    return svg + (legend(names) if len(names) > 1 else "")


def heatmap(
    name: str, rows: Sequence[str], cols: Sequence[str], counts: Sequence[Sequence[int]], title: str
) -> str:
    """A matrix of counts as coloured cells with the count written in each (rows: actual, columns:
    predicted for a confusion matrix); the colour is the count's share of its row."""
    cell, left, top = 44, 120, 110
    width, height = left + cell * len(cols) + 10, top + cell * len(rows) + 10
    marks = []
    for j, col in enumerate(cols):
        x = left + j * cell + cell / 2
        marks.append(_text(x, top - 6, col, "start", f" transform='rotate(-45 {x:.1f} {top - 6})'"))
    for i, row in enumerate(rows):
        total = sum(counts[i]) or 1
        marks.append(_text(left - 6, top + i * cell + cell / 2 + 4, row, "end"))
        for j, n in enumerate(counts[i]):
            share = n / total
            light = round(97 - 55 * share)
            x, y = left + j * cell, top + i * cell
            marks.append(
                f"<rect x='{x}' y='{y}' width='{cell - 1}' height='{cell - 1}' fill='hsl(212,60%,{light}%)'>"
                f"<title>actual {esc(row)}, predicted {esc(cols[j])}: {n}</title></rect>"
            )
            colour = " style='fill:#fff'" if light < 60 else ""  # CSS, to win over the stylesheet's text fill
            marks.append(_text(x + cell / 2, y + cell / 2 + 4, n, "middle", colour))
    return _svg(name, width, height, title, marks)


def line_chart(
    name: str,
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    title: str,
    y_max: float = 1.0,
    diagonal: bool = False,
) -> str:
    """Lines with a dot per point over evenly spaced x positions (None: a gap); `diagonal` draws the
    y = x line of a reliability curve (x from 0 to 1 across the plot, y from 0 to `y_max`)."""
    left, top, plot_h = 48, 12, 180
    step = max(560 / max(len(x_labels), 1), 12)
    width = int(left + step * max(len(x_labels), 1) + 10)
    marks = _y_axis(left, top, plot_h, width - 10, y_max)
    if diagonal:
        marks.append(
            f"<line x1='{left}' y1='{top + plot_h}' x2='{width - 10}' y2='{top}' stroke='#999' stroke-dasharray='4 3'/>"
        )
    every = max(1, math.ceil(len(x_labels) / 12))
    for k, lab in enumerate(x_labels):
        if k % every == 0:
            marks.append(_text(left + step * (k + 0.5), top + plot_h + 14, lab))
    for s, (sname, values) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        points = [
            (left + step * (k + 0.5), top + plot_h - plot_h * min(max(v, 0.0), y_max) / y_max, v)
            for k, v in enumerate(values)
            if v is not None
        ]
        if len(points) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            marks.append(f"<polyline points='{coords}' fill='none' stroke='{colour}' stroke-width='2'/>")
        marks += [
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3.5' fill='{colour}'><title>{esc(sname)}: {esc(fmt(v))}"
            "</title></circle>"
            for x, y, v in points
        ]
    svg = _svg(name, width, top + plot_h + 30, title, marks)
    return svg + (legend(list(series)) if len(series) > 1 else "")


def stacked_bars(
    name: str, x_labels: Sequence[str], shares: Mapping[str, Sequence[float]], title: str
) -> str:
    """One bar per x position, split into the series' shares (each column sums to 1, or 0 when empty)."""
    left, top, plot_h = 48, 12, 180
    step = max(560 / max(len(x_labels), 1), 12)
    width = int(left + step * max(len(x_labels), 1) + 10)
    marks = _y_axis(left, top, plot_h, width - 10, 1.0)
    every = max(1, math.ceil(len(x_labels) / 12))
    for k, lab in enumerate(x_labels):
        base = float(top + plot_h)
        for s, (sname, values) in enumerate(shares.items()):
            h = plot_h * min(max(values[k], 0.0), 1.0)
            if h <= 0:
                continue
            base -= h
            marks.append(
                f"<rect x='{left + step * k + 1:.1f}' y='{base:.1f}' width='{max(step - 2, 1):.1f}' "
                f"height='{h:.1f}' fill='{PALETTE[s % len(PALETTE)]}'><title>{esc(lab)}, {esc(sname)}: "
                f"{esc(fmt(values[k]))}</title></rect>"
            )
        if k % every == 0:
            marks.append(_text(left + step * (k + 0.5), top + plot_h + 14, lab))
    return _svg(name, width, top + plot_h + 30, title, marks) + legend(list(shares))
