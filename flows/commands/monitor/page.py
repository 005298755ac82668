"""The monitor's page: one window of served traffic on one offline HTML page, beside its JSON report.

    series = monitor_series(rows, ref, start, end)                  # read_log's rows, bucketed in time
    write_page(render_monitor_page(report, series), json_path)      # monitor-<end>.html and latest.html

It shows the outcome and each figure with its thresholds (the alarms), the share of each predicted label
and the mean confidence over time (equal time bins across the window: hours for a window up to two days),
the label mix against the champion's test predictions, the served texts' lengths against the
champion's test (else train) split, and the windows per text and unknown-token rates against its train
split. Drawn with stages/reports/html.py: no script, nothing fetched,
every text escaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from flows.commands.monitor.core import MonitorReport, Reference
from stages.core.io import atomic_file
from stages.reports.html import (
    bar_chart,
    document,
    line_chart,
    outcome,
    paragraph,
    section,
    stacked_bars,
    table,
)

MAX_BINS = 48  # a window up to 48 h gets one bin an hour; a longer one 48 equal bins


@dataclass(frozen=True)
class TimeBin:
    """One slice of the window: its start, the champion's rows in it, their label shares and confidence."""

    start: datetime
    rows: int
    shares: dict[str, float]
    confidence: float | None  # mean top probability; None when the bin is empty


@dataclass(frozen=True)
class MonitorSeries:
    """What the page draws beyond the report: the window over time and the length histograms."""

    bins: list[TimeBin]
    labels: list[str]  # every label served or predicted on the test split, sorted
    length_edges: list[int]  # the champion profile's character-length bin edges ([] without one)
    served_lengths: list[int]  # served texts per length bin ([] without texts)
    training_lengths: list[int]  # the profile's test (else train) split per length bin
    training_split: str
    test_confidence: float | None  # the champion's mean top probability on its test split


def time_bins(rows: pd.DataFrame, start: datetime, end: datetime, labels: list[str]) -> list[TimeBin]:
    """The champion's rows in equal time bins across [start, end): one an hour up to MAX_BINS hours."""
    hours = max((end - start) / timedelta(hours=1), 1e-9)
    n = max(1, min(MAX_BINS, math.ceil(hours)))
    width = (end - start) / n
    times = (
        pd.to_datetime(rows["time"], utc=True) if len(rows) else pd.Series([], dtype="datetime64[ns, UTC]")
    )
    index = ((times - pd.Timestamp(start)) / width).astype(int).clip(0, n - 1) if len(rows) else times
    out = []
    for k in range(n):
        mine = rows[(index == k).to_numpy()] if len(rows) else rows
        counts = mine["label"].astype(str).value_counts()
        total = int(counts.sum())
        out.append(
            TimeBin(
                start=start + k * width,
                rows=len(mine),
                shares={c: float(counts.get(c, 0)) / total if total else 0.0 for c in labels},
                confidence=float(mine["score"].mean()) if len(mine) else None,
            )
        )
    return out


def monitor_series(rows: pd.DataFrame, ref: Reference, start: datetime, end: datetime) -> MonitorSeries:
    """The page's series from read_log's rows (the champion's only) and the champion's reference."""
    mine = rows[rows["version"].astype(str) == ref.version] if len(rows) else rows
    labels = sorted(set(mine["label"].astype(str)) | set(ref.predictions["pred"].astype(str)))
    edges = list(ref.profile.length_bins.get("chars", []))
    hists = ref.profile.length_hist.get("chars", {})
    split = "test" if hists.get("test") else "train"
    texts = mine["text"].dropna().astype(str) if "text" in mine else pd.Series([], dtype=str)
    texts = texts[texts.str.len() > 0]
    served: list[int] = []
    if edges and len(texts):
        lengths = np.clip(texts.str.len().to_numpy(), 0, edges[-1] - 1)
        served = [int(x) for x in np.histogram(lengths, bins=edges)[0]]
    scores = ref.predictions["score"] if "score" in ref.predictions else pd.Series([], dtype=float)
    return MonitorSeries(
        bins=time_bins(mine, start, end, labels),
        labels=labels,
        length_edges=edges,
        served_lengths=served,
        training_lengths=list(hists.get(split, [])),
        training_split=split,
        test_confidence=float(scores.mean()) if len(scores) else None,
    )


def _shares(counts: list[int]) -> list[float | None]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def alarms_section(report: MonitorReport) -> str:
    """The outcome, its reason, and each figure against its warn and fail thresholds."""
    rows = [[f.name, f.value, f.warn, f.fail, outcome(f.outcome), f.reason] for f in report.figures]
    names = [f.name for f in report.figures]
    chart = bar_chart(
        "figures",
        names,
        {
            "value": [f.value for f in report.figures],
            "warn at": [f.warn for f in report.figures],
            "fail at": [f.fail for f in report.figures],
        },
        "each figure against its warn and fail thresholds (no value: skipped)",
    )
    head = f"<p>Outcome: {outcome(report.outcome)}</p>" + paragraph(report.reason)
    notes = [paragraph(n) for n in report.notes]
    return section(
        "Alarms",
        head,
        table(["figure", "value", "warn", "fail", "outcome", "reason"], rows, raw_columns=[4]),
        chart,
        *notes,
    )


def _bin_label(b: TimeBin, long: bool) -> str:
    return b.start.strftime("%m-%d %H:%M" if long else "%H:%M")


def over_time_section(report: MonitorReport, series: MonitorSeries) -> str:
    """Label shares and mean confidence per time bin, and the label mix against the champion's test split."""
    if not any(b.rows for b in series.bins):
        return section("Over time", paragraph("No row answered by the champion in the window."))
    long = float(report.window.get("hours", 0)) > 24
    xs = [_bin_label(b, long) for b in series.bins]
    shares = stacked_bars(
        "label_share",
        xs,
        {c: [b.shares.get(c, 0.0) for b in series.bins] for c in series.labels},
        "share of each predicted label per time bin (UTC)",
    )
    test_conf = series.test_confidence
    confidence = line_chart(
        "confidence",
        xs,
        {
            "served mean confidence": [b.confidence for b in series.bins],
            "champion test mean": [test_conf] * len(xs) if test_conf is not None else [None] * len(xs),
        },
        "mean top probability per time bin (UTC)",
    )
    served = report.label_shares.get("served", {})
    test = report.label_shares.get("champion_test", {})
    mix = bar_chart(
        "label_mix",
        series.labels,
        {
            "served": [served.get(c, 0.0) for c in series.labels],
            "champion test": [test.get(c) for c in series.labels],
        },
        "predicted-label shares: served window against the champion's test split",
    )
    rows = [[_bin_label(b, True), b.rows, b.confidence] for b in series.bins if b.rows]
    return section(
        "Over time", shares, confidence, mix, table(["bin start (UTC)", "rows", "mean confidence"], rows)
    )


def lengths_section(series: MonitorSeries) -> str:
    """The served texts' character lengths against the champion's training data, as shares per bin."""
    if not series.served_lengths or not series.training_lengths:
        why = "the request log holds no texts (serve.log_texts)" if series.length_edges else "no length bins"
        return section("Text lengths", paragraph(f"No length distribution: {why}."))
    edges = series.length_edges
    names = [f"{edges[i]}-{edges[i + 1]}" for i in range(len(edges) - 1)]
    chart = bar_chart(
        "lengths",
        names,
        {
            "served": _shares(series.served_lengths),
            f"champion {series.training_split}": _shares(series.training_lengths),
        },
        "share of texts per character-length bin: served against the champion's data",
    )
    return section("Text lengths", chart)


def tokens_section(report: MonitorReport) -> str:
    """How the champion's tokenizer read the served texts against its train split: the share of texts per
    number of windows (and cut), and the unknown-token rates (from the report: no text needed)."""
    shares = report.window_shares
    served, train = shares.get("served", {}), shares.get("champion_train", {})
    rates = report.unknown
    rate = paragraph(
        f"Unknown tokens: {_share(rates.get('served_rate'))} of the served tokens, "
        f"{_share(rates.get('champion_train_share'))} on the champion's train split."
    )
    if not served or not train:
        why = "the request log holds no token counts" if not served else "the champion's profile has none"
        return section("Windows and unknown tokens", paragraph(f"No windows distribution: {why}."), rate)
    keys = sorted(set(served) | set(train), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0))
    chart = bar_chart(
        "windows",
        keys,
        {"served": [served.get(k, 0.0) for k in keys], "champion train": [train.get(k, 0.0) for k in keys]},
        "share of texts read as 1, 2, ... windows (cut: longer than the windows hold)",
    )
    return section("Windows and unknown tokens", chart, rate)


def _share(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2%}"


def render_monitor_page(report: MonitorReport, series: MonitorSeries) -> str:
    """The whole page for one window, as one HTML string."""
    w = report.window
    rows = report.rows
    head = (
        f"champion {report.champion}: {report.outcome}; window {w.get('start')} to {w.get('end')} "
        f"({w.get('hours')} h); {rows.get('champion', 0)} row(s) of the champion, "
        f"{rows.get('other_versions', 0)} of other versions, {rows.get('with_text', 0)} with text"
    )
    return document(
        f"ftpipe monitor: champion {report.champion}, {report.outcome}",
        head,
        [
            alarms_section(report),
            over_time_section(report, series),
            lengths_section(series),
            tokens_section(report),
        ],
    )


def write_page(page: str, json_path: Path) -> Path:
    """The page beside its JSON report (same name, .html) and as latest.html, each written atomically."""
    path = json_path.with_suffix(".html")
    for target in (path, json_path.parent / "latest.html"):
        with atomic_file(target, needed=len(page.encode())) as fh:
            fh.write(page)
    return path
