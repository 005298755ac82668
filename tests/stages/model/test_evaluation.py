"""evaluate's figures: the metrics of both models side by side, and a baseline fit on train only."""

from __future__ import annotations

import numpy as np
import pytest

from stages.config.evaluate import EvaluateParams
from stages.model.evaluation import baseline_proba, build_metrics
from stages.model.predictions import predictions_table, worst_errors


def test_build_metrics_and_worst_errors_on_a_hand_example() -> None:
    names = ["a", "b"]
    y = np.array([0, 0, 1, 1])
    model = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])  # right, wrong (.8), right, wrong (.7)
    base = np.array([[0.6, 0.4], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])  # all right
    m = build_metrics(y, model, base, names, ece_bins=10, examples_per_s=12.5, device="cpu")
    assert m["model"]["accuracy"] == 0.5 and m["baseline"]["accuracy"] == 1.0
    assert m["delta"] == pytest.approx({"accuracy": -0.5, "macro_f1": -0.5, "weighted_f1": -0.5})
    # ECE: bins .9 (right), .8 (wrong), .6 (right), .7 (wrong): (|1-.9| + |0-.8| + |1-.6| + |0-.7|) / 4
    assert m["model"]["ece"] == pytest.approx((0.1 + 0.8 + 0.4 + 0.7) / 4)
    assert m["inference"] == {"examples_per_s": 12.5, "device": "cpu"} and m["test_rows"] == 4

    preds = predictions_table(["w", "x", "y", "z"], y, model, base, names)
    assert list(preds["correct"]) == [1, 0, 1, 0] and list(preds["baseline_correct"]) == [1, 1, 1, 1]
    worst = worst_errors(preds, ["t0", "t1", "t2", "a long text " * 10], n=5, excerpt_chars=20)
    assert list(worst["id"]) == ["x", "z"]  # mistakes only, most confident first
    assert worst["prob_true"].tolist() == pytest.approx([0.2, 0.3])
    assert worst["text"].tolist() == ["t1", "a long text a long t ..."]


def test_baseline_is_fit_on_train_only() -> None:
    train_text = ["goal match team", "bank shares profit", "goal cup win", "profit market bank"]
    probs = baseline_proba(
        train_text, [1, 0, 1, 0], ["team goal", "bank market"], 3, EvaluateParams(baseline_min_df=1)
    )
    assert probs.shape == (2, 3)
    assert list(probs.argmax(axis=1)) == [1, 0]
    assert np.all(probs[:, 2] == 0.0)  # a class absent from train gets probability 0
