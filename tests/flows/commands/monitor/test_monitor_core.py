"""The monitor's core on real texts: BBC traffic passes, another domain fails, a label-mix shift warns, few rows
are insufficient. Served rows go through the server's own request-log writer and are read back from Parquet."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from flows.commands.monitor.core import MonitorReport, compare, parse_since, read_log
from stages.config.monitor import MonitorParams
from tests.flows.commands.monitor.support import (
    World,
    now,
    other_domain_texts,
    pick,
    served_rows,
    write_log,
)

PARAMS = MonitorParams(min_rows=100, max_texts=200)


def monitor(world: World, texts: list[str], folder: Path, log_texts: bool = True) -> MonitorReport:
    end = now()
    write_log(folder, served_rows(world.model, texts, end), log_texts=log_texts)
    start = end - timedelta(hours=24)
    return compare(read_log(folder, start), world.reference, PARAMS, start, end)


def figures(report: MonitorReport) -> dict[str, float | None]:
    return {f.name: f.value for f in report.figures}


def test_traffic_from_the_champions_own_distribution_passes(world: World, tmp_path: Path) -> None:
    report = monitor(world, [r["text"] for r in pick(world.unseen, 250)], tmp_path)
    assert report.outcome == "pass", report.reason
    assert report.rows == {"champion": 250, "other_versions": 0, "with_text": 250}
    got = figures(report)
    assert got["label_js"] is not None and got["label_js"] < 0.1
    assert got["domain_auc"] is not None and got["domain_auc"] < 0.65


def test_traffic_from_another_domain_fails(world: World, tmp_path: Path) -> None:
    report = monitor(world, pick_texts(other_domain_texts(), 250), tmp_path)
    assert report.outcome == "fail"
    got = figures(report)
    assert got["domain_auc"] is not None and got["domain_auc"] > 0.95
    assert got["length_js"] is not None and got["length_js"] > PARAMS.length_js_fail
    assert "domain_auc" in report.reason


def test_a_shift_of_the_label_mix_alone_warns_at_least(world: World, tmp_path: Path) -> None:
    """Unseen BBC articles, but only sport and tech; no texts logged: the labels alone must say it."""
    texts = [r["text"] for r in world.unseen if r["label"] in ("sports", "tech")][:150]
    report = monitor(world, texts, tmp_path, log_texts=False)
    assert report.outcome in ("warn", "fail")
    assert {f.name: f.outcome for f in report.figures}["domain_auc"] == "skip"  # no texts in the log
    served = report.label_shares["served"]
    assert served.get("sports", 0) + served.get("tech", 0) > 0.9, served


def test_fewer_rows_than_the_minimum_is_insufficient_never_pass(world: World, tmp_path: Path) -> None:
    report = monitor(world, [r["text"] for r in pick(world.unseen, PARAMS.min_rows - 1)], tmp_path)
    assert report.outcome == "insufficient" and "monitor.min_rows" in report.reason


def test_rows_of_other_versions_and_before_the_window_are_left_out(world: World, tmp_path: Path) -> None:
    end = now()
    texts = [r["text"] for r in pick(world.unseen, 120)]
    rows = served_rows(world.model, texts, end) + served_rows(world.model, texts[:30], end, version="2")
    write_log(tmp_path, rows)
    start = end - timedelta(minutes=30)  # half of the hour the rows were spread over
    report = compare(read_log(tmp_path, start), world.reference, PARAMS, start, end)
    assert report.rows["champion"] == 60 and report.rows["other_versions"] == 15
    assert report.outcome == "insufficient"


def test_an_empty_log_is_insufficient(world: World, tmp_path: Path) -> None:
    end = now()
    rows = read_log(tmp_path / "missing", end - timedelta(hours=1))
    report = compare(rows, world.reference, PARAMS, end - timedelta(hours=1), end)
    assert report.outcome == "insufficient" and report.rows["champion"] == 0


def test_parse_since() -> None:
    assert parse_since("24h") == 24 and parse_since("30m") == 0.5 and parse_since("7d") == 168
    assert parse_since("2") == 2
    for bad in ("0h", "soon", "-3h"):
        with pytest.raises(ValueError, match="--since"):
            parse_since(bad)


def test_warn_above_fail_is_refused() -> None:
    with pytest.raises(ValueError, match="monitor.label_js_warn"):
        MonitorParams(label_js_warn=0.5, label_js_fail=0.2)


def pick_texts(texts: list[str], n: int) -> list[str]:
    return [r["text"] for r in pick([{"text": t} for t in texts], n)]
