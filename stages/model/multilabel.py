"""Multi-label figures and decisions: pure numpy/sklearn functions on 0/1 indicator matrices.

    y = multi_hot(test["label"], len(names))            # (n, k) 0/1 from lists of class ids
    t = tune_thresholds(y_val, probs_val)               # one decision threshold per label
    pred = decide(probs_test, t)                        # (n, k) 0/1, at least one label per text
    m = multilabel_metrics(y, pred, names, probs_test)  # metrics.json's model block

A multi-label model gives each label its own probability (a sigmoid, not a softmax over labels). A text
carries the labels whose probability reaches that label's threshold; when none does, the one label with
the highest probability / threshold ratio (the data contract gives every text at least one label). A label
set travels as one string, the names in id order joined by `LABEL_SET_SEPARATOR` (stages/core/label_sets.py; CSV cells, the served
`label` column, the gate's champion predictions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05, 0.10, ..., 0.95


def multi_hot(sets: Sequence[Sequence[int]], k: int) -> np.ndarray:
    """(n, k) int64 indicator matrix: row i has a 1 in each column listed in `sets[i]`."""
    out = np.zeros((len(sets), k), dtype=np.int64)
    for i, ids in enumerate(sets):
        out[i, list(ids)] = 1
    return out


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function in float64, stable for large positive and negative logits."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(-np.abs(z))  # never overflows
    out: np.ndarray = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return out


def _f1_counts(tp: int, fp: int, fn: int) -> float:
    """F1 from counts; 0.0 when there is nothing to score (sklearn's zero_division=0)."""
    return 2.0 * tp / (2 * tp + fp + fn) if tp else 0.0


def tune_thresholds(y: np.ndarray, probs: np.ndarray, grid: Sequence[float] | None = None) -> np.ndarray:
    """Per label, the threshold of `grid` (default 0.05..0.95 by 0.05) that maximises that label's F1 on
    (`y`, `probs`); ties go to the threshold closest to 0.5 (then the lower one). A label with no positive
    row keeps 0.5: no threshold can score it, and 0.5 is what an untuned model would use."""
    y_arr = np.asarray(y)
    p_arr = np.asarray(probs, dtype=np.float64)
    cands = sorted(float(t) for t in (DEFAULT_GRID if grid is None else grid))
    if not cands or not all(0.0 < t < 1.0 for t in cands):
        raise ValueError(f"threshold grid must be non-empty and inside (0, 1), got {cands}")
    out = np.full(y_arr.shape[1], 0.5, dtype=np.float64)
    for j in range(y_arr.shape[1]):
        pos = y_arr[:, j] == 1
        if not pos.any():
            continue
        best: tuple[float, float, float] | None = None  # (-f1, |t - 0.5|, t): the smallest wins
        for t in cands:
            hit = p_arr[:, j] >= t
            tp = int((hit & pos).sum())
            f1 = _f1_counts(tp, int((hit & ~pos).sum()), int((~hit & pos).sum()))
            key = (-f1, round(abs(t - 0.5), 9), t)  # rounded: .7 and .3 are equally far from .5
            if best is None or key < best:
                best = key
        assert best is not None
        out[j] = best[2]
    return out


def decide(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(n, k) int64 0/1: the labels whose probability reaches their threshold; a row where none does gets
    the single label with the highest probability / threshold ratio (every text carries a label)."""
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    pred = (p >= t).astype(np.int64)
    empty = pred.sum(axis=1) == 0
    if empty.any():
        best = (p[empty] / t).argmax(axis=1)
        pred[np.flatnonzero(empty), best] = 1
    return pred


def binary_calibration_error(y: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """ECE over every (text, label) probability taken as a binary forecast: equal-width bins of the
    probability, each bin's |fraction of positives - mean probability| weighted by its share of cells
    (the last bin also takes 1.0). Threshold-free: it judges the probabilities, not the decisions."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p = np.asarray(probs, dtype=np.float64).ravel()
    truth = np.asarray(y, dtype=np.float64).ravel()
    if p.size == 0:
        return 0.0
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(truth[mask].mean() - p[mask].mean())
    return float(ece)


def multilabel_metrics(
    y: np.ndarray,
    pred: np.ndarray,
    names: Sequence[str],
    probs: np.ndarray | None = None,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Subset accuracy (as `accuracy` and `subset_accuracy`), Hamming loss, micro/macro/weighted
    precision/recall/F1, ECE (when `probs` is given), label cardinality (mean predicted labels per text)
    and per-label figures (support: texts carrying the label). zero_division=0 throughout."""
    from sklearn.metrics import accuracy_score, hamming_loss, precision_recall_fscore_support

    y_arr, p_arr = np.asarray(y), np.asarray(pred)
    acc = float(accuracy_score(y_arr, p_arr)) if len(y_arr) else 0.0
    out: dict[str, Any] = {"accuracy": acc, "subset_accuracy": acc}
    out["hamming_loss"] = float(hamming_loss(y_arr, p_arr)) if len(y_arr) else 0.0
    for avg in ("micro", "macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y_arr, p_arr, average=avg, zero_division=0)
        out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"] = float(p), float(r), float(f)
    if probs is not None:
        out["ece"] = binary_calibration_error(y_arr, probs, n_bins)
    out["label_cardinality"] = float(p_arr.sum(axis=1).mean()) if len(p_arr) else 0.0
    p, r, f, _ = precision_recall_fscore_support(y_arr, p_arr, average=None, zero_division=0)
    support = y_arr.sum(axis=0)
    out["per_class"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
        for i, name in enumerate(names)
    }
    return out


def per_text_f1(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(n,) float64: each text's F1 between its true and predicted sets, 2|T & P| / (|T| + |P|); 1.0 when
    both are empty."""
    y_arr, p_arr = np.asarray(y), np.asarray(pred)
    both = (y_arr * p_arr).sum(axis=1).astype(np.float64)
    size = (y_arr.sum(axis=1) + p_arr.sum(axis=1)).astype(np.float64)
    out: np.ndarray = np.divide(2.0 * both, size, out=np.ones_like(size), where=size > 0)
    return out
