"""A label-set run's page inputs, built here with evaluate's own functions (stages/model/evaluation.py,
stages/model/predictions.py): seeded true sets and probabilities, metrics.json's blocks, predictions.csv's
rows, and a registry report whose gate compared the version with a champion by the paired bootstrap (the
shape of stages/gate/checks.py's SetComparison). `hostile=True` names one label `<script>...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from stages.core.io import read_json
from stages.model.evaluation import build_multilabel_metrics
from stages.model.multilabel import decide, tune_thresholds
from stages.model.predictions import multilabel_predictions_table
from stages.reports.drift import DriftReport
from stages.reports.evaluate import MetricsReport
from stages.reports.register import RegistryReport
from stages.reports.run_page import Prediction, RunPage
from tests.stages.reports.run_page_inputs import FIXTURES, HOSTILE, registry_report

NAMES = ["arts", "health", "sport", "tech"]
MODEL_THRESHOLDS = np.array([0.5, 0.4, 0.5, 0.6])
TEXTS = 80


@dataclass(frozen=True)
class SetRun:
    """The arrays behind the reports, to check the page against."""

    names: list[str]
    y: np.ndarray  # (n, k) true sets
    probs: np.ndarray  # (n, k) the model's probabilities
    pred: np.ndarray  # (n, k) its decided sets
    metrics: dict[str, Any]  # metrics.json
    predictions: pd.DataFrame  # predictions.csv


def set_run(hostile: bool = False) -> SetRun:
    """80 texts, 4 labels, 1 to 3 labels a text; the model's probabilities lean towards the truth, the
    baseline's less so (its thresholds tuned on a validation draw, as evaluate tunes them)."""
    rng = np.random.default_rng(31)
    names = [HOSTILE if hostile and n == "health" else n for n in NAMES]
    k = len(names)

    def draw(n: int) -> np.ndarray:
        y = (rng.uniform(size=(n, k)) < 0.35).astype(np.int64)
        y[y.sum(axis=1) == 0, rng.integers(0, k)] = 1
        return y

    def lean(y: np.ndarray, pull: float) -> np.ndarray:
        return np.clip(pull * y + (1 - pull) * rng.uniform(size=y.shape), 0.001, 0.999)

    y, y_val = draw(TEXTS), draw(TEXTS)
    probs, base_probs = lean(y, 0.35), lean(y, 0.2)
    base_t = tune_thresholds(y_val, lean(y_val, 0.2))
    pred, base_pred = decide(probs, MODEL_THRESHOLDS), decide(base_probs, base_t)
    metrics = build_multilabel_metrics(
        y, (probs, MODEL_THRESHOLDS), (base_probs, base_t), names, 10, 100.0, "cpu"
    )
    ids = [f"t{i:03d}" for i in range(TEXTS)]
    preds = multilabel_predictions_table(ids, y, probs, pred, base_pred, names)
    return SetRun(names, y, probs, pred, metrics, preds)


def set_comparison(names: list[str]) -> dict[str, Any]:
    """The gate's label-set comparison with a champion (every key of SetComparison)."""
    per_class = {
        n: {
            "rows": 20,
            "candidate_recall": 0.8,
            "champion_recall": 0.7,
            "candidate_f1": 0.81,
            "champion_f1": 0.74,
        }
        for n in names
    }
    return {
        "rows": 60,
        "test_rows": TEXTS,
        "left_out_seen": 20,
        "champion_trained_on_record": True,
        "primary_metric": "micro_f1",
        "candidate_primary": 0.8123,
        "champion_primary": 0.7456,
        "difference_ci95_low": 0.021,
        "difference_ci95_high": 0.112,
        "candidate_errors": 21,
        "champion_errors": 30,
        "only_candidate_right": 12,
        "only_champion_right": 3,
        "bootstrap_samples": 2000,
        "p_noninferiority": 0.0005,
        "p_worse": 0.0015,
        "p_superiority": 0.0035,
        "per_class": per_class,
    }


def page_predictions(preds: pd.DataFrame, names: list[str]) -> list[Prediction]:
    """predictions.csv's rows as the page takes them, with every label's probability."""
    probs = preds[[f"prob_{n}" for n in names]].to_numpy()
    return [
        Prediction(str(a), str(b), float(s), tuple(float(v) for v in row))
        for a, b, s, row in zip(preds["label"], preds["pred"], preds["score"], probs, strict=True)
    ]


def set_page(run: SetRun, with_probs: bool = True, comparison: bool = True) -> RunPage:
    """The page's inputs for `run`: version 2 promoted over champion 1 (or a first version without one)."""
    report = registry_report("ftpipe-topics", run.names)
    report["gate"]["comparison"] = set_comparison(run.names) if comparison else None
    if not comparison:
        report["gate"]["champion_before"] = None
    preds = page_predictions(run.predictions, run.names)
    if not with_probs:
        preds = [Prediction(p.label, p.pred, p.score) for p in preds]
    return RunPage(
        registry=RegistryReport.model_validate(report),
        metrics=MetricsReport.model_validate(run.metrics),
        predictions=preds,
        labels=run.names,
        drift=DriftReport.model_validate(read_json(FIXTURES / "drift.json")),
        generated=datetime(2025, 6, 2, 3, 0, tzinfo=timezone.utc),
    )
