"""Multi-label helpers on hand-checked examples (every expected number is worked out in the comments)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from stages.model.multilabel import (
    binary_calibration_error,
    decide,
    multi_hot,
    multilabel_metrics,
    per_text_f1,
    sigmoid,
    tune_thresholds,
)

# rows: {a, c}, {a, b}, {a, b}, {c}  predicted {a}, {b}, {a, b}, {b, c}
Y = np.array([[1, 0, 1], [1, 1, 0], [1, 1, 0], [0, 0, 1]])
PRED = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 1, 1]])


def test_multi_hot() -> None:
    out = multi_hot([[0, 2], [1], [0, 1, 2]], 3)
    assert out.dtype == np.int64
    assert out.tolist() == [[1, 0, 1], [0, 1, 0], [1, 1, 1]]
    assert multi_hot([], 2).shape == (0, 2)


def test_sigmoid_is_stable_and_exact() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning at +-1000
        out = sigmoid(np.array([[-1000.0, 0.0, np.log(3.0), 1000.0]]))
    assert out.dtype == np.float64
    assert out.shape == (1, 4)
    assert out[0].tolist() == pytest.approx([0.0, 0.5, 0.75, 1.0])


def test_multilabel_metrics_hand_example() -> None:
    # a: y 1110 p 1010 -> TP 2 FP 0 FN 1: P 1, R 2/3, F1 .8, support 3
    # b: y 0110 p 0111 -> TP 2 FP 1 FN 0: P 2/3, R 1, F1 .8, support 2
    # c: y 1001 p 0001 -> TP 1 FP 0 FN 1: P 1, R .5, F1 2/3, support 2
    m = multilabel_metrics(Y, PRED, ["a", "b", "c"])
    assert m["accuracy"] == m["subset_accuracy"] == pytest.approx(0.25)  # only row 2 matches
    assert m["hamming_loss"] == pytest.approx(3 / 12)  # 3 wrong cells of 12
    assert m["micro_precision"] == pytest.approx(5 / 6)  # TP 5, FP 1
    assert m["micro_recall"] == pytest.approx(5 / 7)  # TP 5, FN 2
    assert m["micro_f1"] == pytest.approx(10 / 13)  # 2*5 / (2*5 + 1 + 2)
    assert m["macro_precision"] == pytest.approx(8 / 9)  # (1 + 2/3 + 1) / 3
    assert m["macro_recall"] == pytest.approx(13 / 18)  # (2/3 + 1 + .5) / 3
    assert m["macro_f1"] == pytest.approx(34 / 45)  # (.8 + .8 + 2/3) / 3
    assert m["weighted_precision"] == pytest.approx(19 / 21)  # (3*1 + 2*2/3 + 2*1) / 7
    assert m["weighted_recall"] == pytest.approx(5 / 7)  # (3*2/3 + 2*1 + 2*.5) / 7
    assert m["weighted_f1"] == pytest.approx(16 / 21)  # (3*.8 + 2*.8 + 2*2/3) / 7
    assert m["label_cardinality"] == pytest.approx(1.5)  # 1 + 1 + 2 + 2 over 4 texts
    assert m["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert m["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert m["per_class"]["c"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert "ece" not in m and "thresholds" not in m
    assert list(m)[:3] == ["accuracy", "subset_accuracy", "hamming_loss"]


def test_multilabel_metrics_ece_when_probs_given() -> None:
    # 2 bins. bin 0: p .3, .25 (truth 0, 0) -> |0 - .275| = .275; bin 1: p .8, .6 (truth 1, 1) -> |1 - .7| = .3
    y = np.array([[1, 0], [0, 1]])
    probs = np.array([[0.8, 0.3], [0.25, 0.6]])
    assert binary_calibration_error(y, probs, 2) == pytest.approx(0.5 * 0.275 + 0.5 * 0.3)
    m = multilabel_metrics(y, decide(probs, np.array([0.5, 0.5])), ["x", "y"], probs, n_bins=2)
    assert m["ece"] == pytest.approx(0.2875)
    assert m["accuracy"] == 1.0 and m["micro_f1"] == 1.0
    with pytest.raises(ValueError, match="n_bins"):
        binary_calibration_error(y, probs, 0)


def test_absent_label_counts_as_zero_in_macro_means() -> None:
    y = np.array([[1, 0, 0], [0, 1, 0]])
    m = multilabel_metrics(y, y, ["a", "b", "c"])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["macro_f1"] == pytest.approx(2 / 3)
    assert m["micro_f1"] == m["weighted_f1"] == 1.0


def test_per_text_f1() -> None:
    # {a,c} vs {a}: 2*1/(2+1); {a,b} vs {b}: 2/3; equal sets: 1; {c} vs {b,c}: 2/3
    assert per_text_f1(Y, PRED).tolist() == pytest.approx([2 / 3, 2 / 3, 1.0, 2 / 3])
    assert per_text_f1(np.zeros((1, 2), int), np.zeros((1, 2), int)).tolist() == [1.0]
    assert per_text_f1(np.array([[1, 0]]), np.array([[0, 1]])).tolist() == [0.0]


def test_tune_thresholds_maximises_each_labels_f1() -> None:
    y = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]])
    probs = np.array([[0.9, 0.9, 0.9], [0.6, 0.8, 0.2], [0.4, 0.2, 0.1], [0.1, 0.1, 0.1]])
    # label 0 over (.3, .5, .7): F1 .8 (one false positive), 1.0, 2/3 (one miss) -> .5
    # label 1: all three give F1 1.0 -> the one closest to .5; label 2 has no positive row -> .5
    assert tune_thresholds(y, probs, [0.7, 0.3, 0.5]).tolist() == [0.5, 0.5, 0.5]
    # without .5, label 1's .3 and .7 tie (F1 1.0) equally far from .5 -> the lower, .3; label 0: .3 (F1 .8)
    assert tune_thresholds(y, probs, [0.7, 0.3]).tolist() == [0.3, 0.3, 0.5]
    # default grid .05..95: label 0 scores 1.0 for t in (.4, .6] -> .45 .5 .55 .6 -> closest to .5 is .5
    # label 1 scores 1.0 for t in (.2, .8] -> .5
    assert tune_thresholds(y, probs).tolist() == [0.5, 0.5, 0.5]


def test_tune_thresholds_ties_go_to_the_one_closest_to_half() -> None:
    y = np.array([[1], [1], [0], [0]])
    probs = np.array([[0.9], [0.8], [0.2], [0.1]])
    assert tune_thresholds(y, probs, [0.3, 0.4, 0.7]).tolist() == [0.4]  # all three F1 1.0
    with pytest.raises(ValueError, match="inside"):
        tune_thresholds(y, probs, [0.0, 0.5])


def test_decide_falls_back_to_best_ratio() -> None:
    probs = np.array([[0.6, 0.2], [0.1, 0.15], [0.3, 0.1], [0.9, 0.9]])
    t = np.array([0.5, 0.3])
    # row 0: .6 >= .5 only; row 1: none passes, ratios .2 and .5 -> b; row 2: ratios .6 and .33 -> a
    out = decide(probs, t)
    assert out.dtype == np.int64
    assert out.tolist() == [[1, 0], [0, 1], [1, 0], [1, 1]]
