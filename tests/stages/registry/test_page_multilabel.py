"""register's page for a label-set run (stages/registry/page.py): reports/metrics.json and predictions.csv
written by evaluate's own writers, read back with every label's probability (`prob_<label>`), and the page
built from them; a single-label read keeps its rows as they were."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.core.io import write_json
from stages.model.predictions import predictions_table, write_csv
from stages.registry.page import read_predictions, write_run_page
from stages.reports.register import RegistryReport
from stages.reports.run_page import Prediction
from tests.stages.reports.run_page_inputs import HOSTILE, registry_report
from tests.stages.reports.run_page_sets import set_comparison, set_run


def test_a_label_set_runs_page_is_built_from_its_files(tmp_path: Path) -> None:
    run = set_run(hostile=True)
    metrics, preds = tmp_path / "metrics.json", tmp_path / "predictions.csv"
    write_json(metrics, run.metrics)
    write_csv(preds, run.predictions)
    report = registry_report("ftpipe-topics", run.names)
    report["gate"]["comparison"] = set_comparison(run.names)
    out = tmp_path / "reports" / "report.html"
    write_run_page(out, RegistryReport.model_validate(report), metrics, preds, None, run.names)
    page = out.read_text(encoding="utf-8")
    assert "data-chart='calibration'" in page and "<script" not in page
    assert f"{run.y.size} pairs from 80 test texts" in page  # every label's probability was read
    assert f"<td>micro_f1</td><td class='n'>{run.metrics['model']['micro_f1']:.4f}</td>" in page
    assert "Confusion matrix of (text, label) pairs" in page and HOSTILE not in page


def test_probabilities_are_read_in_label_order_only_when_asked(tmp_path: Path) -> None:
    run = set_run()
    path = tmp_path / "predictions.csv"
    write_csv(path, run.predictions)
    order = list(reversed(run.names))
    rows = read_predictions(path, order)
    assert np.allclose([r.probs for r in rows], run.probs[:, ::-1], atol=1e-6)  # written to 6 decimals
    assert rows[0].label == run.predictions["label"][0] and "|" in "".join(r.label for r in rows)
    assert all(r.probs == () for r in read_predictions(path))  # a single-label read: no probabilities
    assert all(r.probs == () for r in read_predictions(path, ["missing"]))  # a column short: none either


def test_a_single_label_file_reads_as_before(tmp_path: Path) -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    table = predictions_table(["a", "b"], np.array([0, 1]), probs, probs, ["x", "y", "=z"])
    write_csv(tmp_path / "p.csv", table)
    assert read_predictions(tmp_path / "p.csv") == [Prediction("x", "x", 0.7), Prediction("y", "=z", 0.6)]
