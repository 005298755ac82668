"""Metric functions on hand-checked examples (every expected number is worked out in the comments)."""

from __future__ import annotations

import numpy as np
import pytest

from stages.model.metrics import classification_metrics, expected_calibration_error, softmax


def test_classification_metrics_hand_example() -> None:
    # supports 3, 2, 1. class 0: TP 2, FP 0, FN 1 -> P 1, R 2/3, F1 0.8
    # class 1: TP 1, FP 1, FN 1 -> P .5, R .5, F1 .5;  class 2: TP 1, FP 1, FN 0 -> P .5, R 1, F1 2/3
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["macro_precision"] == pytest.approx(2 / 3)  # (1 + .5 + .5) / 3
    assert m["macro_recall"] == pytest.approx(13 / 18)  # (2/3 + .5 + 1) / 3
    assert m["macro_f1"] == pytest.approx(59 / 90)  # (.8 + .5 + 2/3) / 3
    assert m["weighted_precision"] == pytest.approx(0.75)  # (3*1 + 2*.5 + 1*.5) / 6
    assert m["weighted_recall"] == pytest.approx(4 / 6)  # weighted recall is the accuracy
    assert m["weighted_f1"] == pytest.approx(61 / 90)  # (3*.8 + 2*.5 + 1*2/3) / 6
    assert m["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert m["per_class"]["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert "ece" not in m


def test_absent_class_counts_as_zero_in_macro_means() -> None:
    m = classification_metrics([0, 1], [0, 1], ["a", "b", "c"])
    assert m["accuracy"] == 1.0
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["macro_f1"] == pytest.approx(2 / 3)
    assert m["weighted_f1"] == pytest.approx(1.0)


def test_expected_calibration_error_hand_example() -> None:
    # bin 9: confidences .95, .95, one right -> |0.5 - 0.95| = 0.45, weight 2/4
    # bin 6: confidences .65, .65, both right -> |1.0 - 0.65| = 0.35, weight 2/4  => ECE = 0.225 + 0.175
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.35, 0.65], [0.65, 0.35]])
    y_true = [0, 1, 1, 0]
    assert expected_calibration_error(y_true, probs, n_bins=10) == pytest.approx(0.4)
    assert expected_calibration_error(y_true, probs, n_bins=1) == pytest.approx(abs(0.75 - 0.8))
    # certain and right: perfectly calibrated; confidence 1.0 falls in the last bin
    assert expected_calibration_error([0, 1], np.array([[1.0, 0.0], [0.0, 1.0]])) == 0.0
    m = classification_metrics(y_true, probs.argmax(axis=1), ["x", "y"], probs)
    assert m["ece"] == pytest.approx(0.4)


def test_softmax_is_stable_for_large_logits() -> None:
    p = softmax(np.array([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]]))
    assert np.allclose(p, [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
