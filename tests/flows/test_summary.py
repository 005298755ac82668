"""The retrain summary reads each report through its typed model (stages/reports/)."""

from __future__ import annotations

import json
from pathlib import Path

from flows.dag import StageSpec
from flows.runner import StageOutcome
from flows.summary import build_summary, render_markdown


def test_a_report_without_a_key_the_summary_reads_is_named_not_left_out(tmp_path: Path) -> None:
    """A metrics.json whose `model` key was renamed left the metrics table out without a word."""
    (tmp_path / "reports").mkdir()
    metrics = {"primary_metric": "macro_f1", "figures": {"accuracy": 0.9, "macro_f1": 0.8}, "baseline": {}}
    (tmp_path / "reports" / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "reports" / "drift.json").write_text("{")
    dag = [
        StageSpec("evaluate", "evaluate", json_outputs=("reports/metrics.json",)),
        StageSpec("drift", "drift", json_outputs=("reports/drift.json",)),
    ]
    summary = build_summary(tmp_path, dag, [StageOutcome("evaluate", "ran"), StageOutcome("drift", "ran")])
    assert summary["metrics"] is None and summary["metrics_fresh"]
    metrics_problem, drift_problem = summary["unreadable_reports"]
    assert metrics_problem.startswith("reports/metrics.json (stage `evaluate`)")
    assert "`model`: Field required" in metrics_problem and "`dvc repro evaluate`" in metrics_problem
    assert drift_problem.startswith("reports/drift.json (stage `drift`) is not valid JSON")
    text = render_markdown(summary)
    assert "### Reports not shown" in text and f"- {metrics_problem}" in text
    assert "### Metrics" not in text


def test_reports_that_parse_show_no_problem_section(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    metrics = {
        "primary_metric": "macro_f1",
        "model": {"accuracy": 0.9, "macro_f1": 0.8, "per_class": {"a": {"f1": 0.8}}},
        "baseline": {"accuracy": 0.7, "macro_f1": 0.6},
    }
    (tmp_path / "reports" / "metrics.json").write_text(json.dumps(metrics))
    dag = [StageSpec("evaluate", "evaluate", json_outputs=("reports/metrics.json",))]
    summary = build_summary(tmp_path, dag, [StageOutcome("evaluate", "skipped")])
    assert summary["metrics"] == metrics and summary["unreadable_reports"] == []
    text = render_markdown(summary)
    assert "| **macro_f1** | 0.8000 | 0.6000 | +0.2000 |" in text and "| accuracy | 0.9000 | 0.7000 |" in text
    assert "per_class" not in text and "Reports not shown" not in text
