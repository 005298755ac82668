"""The gate's multi-label statistics: metrics from counts equal scikit-learn's, and the paired bootstrap's
p-values on constructed cases whose answer is clear."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from stages.gate.sets import (
    SET_METRICS,
    indicator,
    paired_bootstrap,
    per_label,
    resampled_differences,
    set_score,
    split_set,
)


def random_sets(seed: int, n: int = 300, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.3).astype(np.int64)
    pred = y.copy()
    flip = rng.random((n, k)) < 0.15
    pred[flip] = 1 - pred[flip]
    return y, pred


def test_set_strings_become_indicator_rows_in_label_order() -> None:
    names = ["sport", "tech", "world"]
    got = indicator(["tech|sport", "world", "sport|tech|world"], names)
    assert got.tolist() == [[1, 1, 0], [0, 0, 1], [1, 1, 1]]
    assert split_set("a|b") == ["a", "b"] and split_set("") == []
    with pytest.raises(ValueError, match="'other'"):
        indicator(["other"], names)


@pytest.mark.parametrize("metric", SET_METRICS)
def test_every_metric_equals_scikit_learns(metric: str) -> None:
    y, pred = random_sets(1)
    y[:, 4] = 0  # a label no row carries: zero_division=0, as evaluate computes it
    if metric in ("accuracy", "subset_accuracy"):
        want = accuracy_score(y, pred)
    else:
        average, kind = metric.split("_")
        fn = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[kind]
        want = fn(y, pred, average=average, zero_division=0)
    assert set_score(y, pred, metric) == pytest.approx(want, abs=1e-12)


def test_identical_predictions_give_no_evidence_of_a_difference() -> None:
    y, pred = random_sets(2)
    boot = paired_bootstrap(y, pred, pred.copy(), "micro_f1", samples=2000, margin=0.01)
    assert boot.difference == 0.0 and boot.ci95 == (0.0, 0.0)
    assert boot.p_superiority == 1.0  # not better
    assert boot.p_worse == 1.0  # not worse
    # every resample's difference is 0, above -margin: non-inferiority shown at the smallest p possible
    assert boot.p_noninferiority == pytest.approx(1 / 2001)


def test_a_much_better_candidate_has_small_p_and_a_much_worse_one_fails_non_inferiority() -> None:
    y, _ = random_sets(3, n=200)
    good = y.copy()  # exactly right
    _, bad = random_sets(4, n=200)  # noisy predictions of other rows' labels: far worse
    boot = paired_bootstrap(y, good, bad, "micro_f1", samples=2000, margin=0.01)
    assert boot.difference > 0.3
    assert boot.p_superiority == pytest.approx(2 / 2001)  # no resample at or below 0
    assert boot.p_noninferiority == pytest.approx(1 / 2001)
    assert boot.p_worse == 1.0
    worse = paired_bootstrap(y, bad, good, "micro_f1", samples=2000, margin=0.01)
    assert worse.p_noninferiority == 1.0  # every resample is more than the margin below
    assert worse.p_worse == pytest.approx(1 / 2001)
    assert worse.p_superiority == pytest.approx(2 / 2001)  # significant, but the candidate is behind


def test_a_small_difference_on_few_rows_is_not_significant() -> None:
    y, pred = random_sets(5, n=40)
    other = pred.copy()
    other[0] = 1 - other[0]  # one row's set flipped
    boot = paired_bootstrap(y, pred, other, "micro_f1", samples=2000, margin=0.01)
    assert abs(boot.difference) < 0.05
    assert boot.p_superiority > 0.05


def test_the_bootstrap_is_seeded_and_pairs_the_rows() -> None:
    y, a = random_sets(6)
    _, b = random_sets(7)
    d1 = resampled_differences(y, a, b, "macro_f1", 500)
    d2 = resampled_differences(y, a, b, "macro_f1", 500)
    assert np.array_equal(d1, d2)  # the same decision at every run
    assert not np.array_equal(d1, resampled_differences(y, a, b, "macro_f1", 500, seed=1))
    # paired: a model against itself differs by exactly 0 in every resample
    assert not resampled_differences(y, a, a, "macro_f1", 500).any()
    assert np.mean(d1) == pytest.approx(set_score(y, a, "macro_f1") - set_score(y, b, "macro_f1"), abs=0.02)


def test_per_label_counts_positive_rows_recall_and_f1() -> None:
    y = indicator(["a", "a|b", "b", "b"], ["a", "b"])
    pred = indicator(["a", "a", "b", "a"], ["a", "b"])
    rows, recall, f1 = per_label(y, pred)
    assert rows.tolist() == [2, 3]
    assert recall.tolist() == pytest.approx([1.0, 1 / 3])
    # a: tp 2, fp 1 (row 3), fn 0; b: tp 1, fp 0, fn 2
    assert f1.tolist() == pytest.approx([4 / 5, 2 / 4])
