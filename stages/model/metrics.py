"""Classification metrics shared by finetune (validation) and evaluate (test): pure functions on arrays.

Everything here takes integer class ids (`y_true`, `y_pred`), an optional `(n, k)` probability matrix and
the class names in id order, and returns plain floats, so results are JSON-ready and easy to check by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PRIMARY_METRIC = "macro_f1"


Labels = Sequence[int] | np.ndarray  # class indices, one per row


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, stable for large logits."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def expected_calibration_error(y_true: Labels, probs: np.ndarray, n_bins: int = 10) -> float:
    """ECE: the support-weighted mean gap between confidence and accuracy over equal-width confidence bins.

    The confidence of a row is its top probability and its prediction the arg-max; bin b holds the rows
    with confidence in [b/n_bins, (b+1)/n_bins), the last bin also takes confidence 1.0.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true)
    if len(y) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def classification_metrics(
    y_true: Labels,
    y_pred: Labels,
    names: Sequence[str],
    probs: np.ndarray | None = None,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Accuracy; macro and weighted precision/recall/F1; ECE (when `probs` is given); per-class figures.

    Classes absent from both `y_true` and `y_pred` count as 0 in the macro means (sklearn's
    `zero_division=0`), so the macro figures always average over all `names`.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    labels = list(range(len(names)))
    true_arr = np.asarray(y_true)
    pred_arr = np.asarray(y_pred)
    out: dict[str, Any] = {"accuracy": float(accuracy_score(true_arr, pred_arr)) if len(true_arr) else 0.0}
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            true_arr, pred_arr, labels=labels, average=avg, zero_division=0
        )
        out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"] = float(p), float(r), float(f)
    if probs is not None:
        out["ece"] = expected_calibration_error(true_arr, probs, n_bins)
    p, r, f, s = precision_recall_fscore_support(
        true_arr, pred_arr, labels=labels, average=None, zero_division=0
    )
    out["per_class"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(names)
    }
    return out


def classification_report_text(y_true: Labels, y_pred: Labels, names: Sequence[str]) -> str:
    """sklearn's text classification report over all `names` (for logs and people)."""
    from sklearn.metrics import classification_report

    text: str = classification_report(
        y_true, y_pred, labels=list(range(len(names))), target_names=list(names), digits=4, zero_division=0
    )
    return text
