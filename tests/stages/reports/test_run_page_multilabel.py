"""The run page of a label-set run (metrics.json `task: multi_label`): micro-F1, subset accuracy and Hamming
loss against the baseline and the champion, each label's figures with its threshold and TP/FP/FN, the
(text, label) confusion with `(none)`, the binary reliability of every (text, label) probability; every
figure checked against the arrays the reports were built from. Offline and escaped like a single-label page."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from stages.core.label_sets import NO_LABEL
from stages.gate.checks import SetComparison
from stages.model.predictions import multilabel_confusion_records
from stages.reports.html import esc, fmt
from stages.reports.run_page import (
    binary_calibration,
    label_counts,
    render_run_page,
    set_confusion_counts,
)
from tests.stages.reports.run_page_inputs import HOSTILE
from tests.stages.reports.run_page_sets import set_comparison, set_page, set_run
from tests.stages.reports.test_run_page import RUN_CHARTS, outline


def row(*cells: object) -> str:
    """A table row as `html.table` writes it: texts left, numbers right-aligned."""
    out = []
    for c in cells:
        number = isinstance(c, int | float) and not isinstance(c, bool)
        out.append(f"<td class='n'>{esc(fmt(c))}</td>" if number else f"<td>{esc(fmt(c))}</td>")
    return "<tr>" + "".join(out) + "</tr>"


def test_the_metrics_table_leads_with_micro_f1_subset_accuracy_and_hamming_loss() -> None:
    run = set_run()
    page = render_run_page(set_page(run))
    model, base = run.metrics["model"], run.metrics["baseline"]
    for key in ("micro_f1", "subset_accuracy", "hamming_loss", "macro_f1", "label_cardinality", "ece"):
        assert row(key, model[key], base[key], model[key] - base[key]) in page, key
    assert page.index(
        row("micro_f1", model["micro_f1"], base["micro_f1"], model["micro_f1"] - base["micro_f1"])
    ) < (page.index("<td>subset_accuracy</td>"))
    text = "".join(outline(page).text)
    assert "primary metric: micro_f1 (label sets); test texts: 80" in text
    truth = run.y.sum(axis=1).mean()
    assert f"labels per text: true {truth:.3f}, model {model['label_cardinality']:.3f}" in text
    # the metrics chart holds the shares of 1 only: no bar for Hamming loss, cardinality or ECE
    assert "hamming_loss, model" not in page and "label_cardinality, model" not in page
    assert "micro_f1, model" in page


def test_the_champion_is_judged_on_the_gates_bootstrap() -> None:
    run = set_run()
    comp = set_comparison(run.names)
    assert set(comp) == set(SetComparison.__annotations__)  # the gate's shape, key for key
    page = render_run_page(set_page(run))
    assert row("micro_f1 (compared texts)", 0.8123, 0.7456, 60) in page
    assert row("subset accuracy (compared texts)", 1 - 21 / 60, 1 - 30 / 60, 60) in page
    assert row("texts whose set is wrong", 21, 30, 60) in page
    text = "".join(outline(page).text)
    assert "paired bootstrap, 2000 resamples: micro_f1 difference 95% CI 0.0210 to 0.1120" in text
    assert "p non-inferiority 0.0005, p worse 0.0015, p superiority 0.0035" in text
    assert "McNemar" not in text
    first = render_run_page(set_page(run, comparison=False))
    assert "no champion (the first version)" in "".join(outline(first).text)
    assert "champion" not in outline(first).charts


def test_each_label_shows_its_figures_threshold_and_pair_counts() -> None:
    run = set_run()
    page = render_run_page(set_page(run))
    y, pred = run.y.astype(bool), run.pred.astype(bool)
    tp, fp, fn = (y & pred).sum(0), (~y & pred).sum(0), (y & ~pred).sum(0)
    per_class, thresholds = run.metrics["model"]["per_class"], run.metrics["model"]["thresholds"]
    for j, name in enumerate(run.names):
        pc = per_class[name]
        assert pc["precision"] == pytest.approx(
            tp[j] / (tp[j] + fp[j])
        )  # metrics.json agrees with the counts
        figures = (pc["precision"], pc["recall"], pc["f1"], pc["support"], thresholds[name])
        assert row(name, *figures, int(tp[j]), int(fp[j]), int(fn[j])) in page, name
    assert "<th>threshold</th><th>TP</th><th>FP</th><th>FN</th>" in page


def test_the_confusion_counts_evaluates_none_records() -> None:
    run = set_run()
    preds = set_page(run).predictions
    counts = set_confusion_counts(preds, run.names)
    axis = [*run.names, NO_LABEL]
    records = Counter(
        (r["actual"], r["predicted"]) for r in multilabel_confusion_records(run.predictions, run.names)
    )
    assert {(axis[i], axis[j]): n for i, r in enumerate(counts) for j, n in enumerate(r) if n} == records
    y, pred = run.y.astype(bool), run.pred.astype(bool)
    assert label_counts(counts) == [
        (int((y & pred)[:, j].sum()), int((~y & pred)[:, j].sum()), int((y & ~pred)[:, j].sum()))
        for j in range(len(run.names))
    ]
    assert counts[-1][-1] == 0  # a pair always has the label on one side
    page = render_run_page(set_page(run))
    total = sum(records.values())
    assert f"{total} pairs from 80 test texts, {sum(counts[j][j] for j in range(4))} agree" in page
    assert f"<title>actual {NO_LABEL}, predicted tech: {counts[-1][3]}</title>" in page


def test_calibration_is_binary_over_every_text_label_probability() -> None:
    run = set_run()
    page_in = set_page(run)
    bins = binary_calibration(page_in.predictions, run.names, 10)
    cells = run.y.size
    assert sum(n for n, _, _ in bins) == cells
    ece = sum(
        n / cells * abs(frac - mean) for n, frac, mean in bins if n and frac is not None and mean is not None
    )
    assert ece == pytest.approx(run.metrics["model"]["ece"])  # metrics.json's ECE, from the page's bins
    hit = (run.probs >= 0.9) & (run.probs < 1.0)
    assert bins[9][0] == int(hit.sum()) and bins[9][1] == pytest.approx(run.y[hit].mean())
    text = "".join(outline(render_run_page(page_in)).text)
    assert f"Binary expected calibration error {run.metrics['model']['ece']:.4f} over 10 bins" in text
    assert f"{cells} pairs from 80 test texts" in text
    bare = render_run_page(set_page(run, with_probs=False))
    assert "no per-label probabilities (prob_<label>)" in "".join(outline(bare).text)
    assert "calibration" not in outline(bare).charts


def test_the_set_page_draws_every_chart_fetches_nothing_and_escapes() -> None:
    page = render_run_page(set_page(set_run(hostile=True)))
    found = outline(page)
    assert set(found.charts) == RUN_CHARTS
    assert all(n > 0 for n in found.charts.values()), found.charts
    assert found.fetching == [] and "script" not in found.tags and "<script" not in page
    assert HOSTILE in "".join(found.text) and esc(HOSTILE) in page
    for part in ("Confusion matrix of (text, label) pairs", "Per label", "Calibration", "Drift", "Gate"):
        assert part in "".join(found.text)


def test_probabilities_in_label_order_feed_the_bins() -> None:
    run = set_run()
    preds = set_page(run).predictions
    assert np.allclose(np.array([p.probs for p in preds]), run.probs)
