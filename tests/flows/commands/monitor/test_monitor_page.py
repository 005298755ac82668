"""The monitor's page (flows/commands/monitor/page.py): the window over time, the lengths, the alarms; escaped,
fetching nothing, and written beside the JSON report by `ftpipe monitor`. tests/test_pages_browser.py
renders it in a real browser."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from flows.commands.monitor import run as command
from flows.commands.monitor.core import Reference
from flows.commands.monitor.page import render_monitor_page, time_bins
from stages.reports.html import esc
from tests.flows.commands.monitor.page_inputs import HOSTILE, HOURS, window
from tests.flows.commands.monitor.support import World, now, pick, served_rows, write_log
from tests.stages.reports.test_run_page import outline

MONITOR_CHARTS = {"figures", "label_share", "confidence", "label_mix", "lengths"}


def test_the_window_is_drawn_hour_by_hour_with_every_chart() -> None:
    report, series = window()
    assert len(series.bins) == HOURS and sum(b.rows for b in series.bins) == 120
    assert all(abs(sum(b.shares.values()) - 1) < 1e-9 for b in series.bins)
    assert sum(series.served_lengths) == 120 and len(series.training_lengths) == len(series.length_edges) - 1
    page = render_monitor_page(report, series)
    found = outline(page)
    assert set(found.charts) == MONITOR_CHARTS and all(n > 0 for n in found.charts.values()), found.charts
    assert found.fetching == [] and "script" not in found.tags
    text = "".join(found.text)
    assert f"ftpipe monitor: champion 3, {report.outcome}" in text
    for f in report.figures:  # each alarm with its thresholds
        assert f.name in text and f"monitor.{f.name}_warn" in text or f.outcome == "skip"


def test_a_hostile_label_is_text() -> None:
    page = render_monitor_page(*window(hostile=True))
    assert "<script" not in page and esc(HOSTILE) in page
    assert HOSTILE in "".join(outline(page).text)


def test_no_texts_and_an_empty_window_say_so() -> None:
    report, series = window(texts=False)
    text = "".join(outline(render_monitor_page(report, series)).text)
    assert "No length distribution: the request log holds no texts" in text
    report, series = window(served=0)
    found = outline(render_monitor_page(report, series))
    assert "No row answered by the champion in the window." in "".join(found.text)
    assert report.outcome == "insufficient" and set(found.charts) == {"figures"}


def test_a_long_window_gets_equal_bins() -> None:
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    empty = pd.DataFrame({"time": [], "label": [], "score": []})
    bins = time_bins(empty, start, start + timedelta(days=10), ["a"])
    assert len(bins) == 48 and bins[1].start - bins[0].start == timedelta(hours=5)
    assert all(b.rows == 0 and b.confidence is None for b in bins)


def test_monitor_writes_its_page_beside_the_report(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"serve:\n  log_dir: {tmp_path / 'log'}\nmonitor:\n  min_rows: 50\n  max_texts: 100\n")
    write_log(tmp_path / "log", served_rows(world.model, [r["text"] for r in pick(world.unseen, 60)], now()))

    def reference(params_path: str | Path, name: str | None) -> Reference:
        return world.reference

    monkeypatch.setattr(command, "champion_reference", reference)
    assert command.run_monitor(params, "3h", None, root=tmp_path) == 0
    folder = tmp_path / "reports/monitor"
    (report,) = folder.glob("monitor-*.json")
    page = report.with_suffix(".html").read_text(encoding="utf-8")
    assert (folder / "latest.html").read_text(encoding="utf-8") == page
    assert set(outline(page).charts) == MONITOR_CHARTS
    assert not list(folder.glob(".*.tmp-*"))
