"""The gate's multi-label statistics, pure: label sets as indicator rows, the primary metric on them, and a
paired bootstrap of the difference between two models on the same rows.

    y, a, b = indicator(labels, names), indicator(cand_preds, names), indicator(champ_preds, names)
    boot = paired_bootstrap(y, a, b, "micro_f1", samples=2000, margin=0.01)
    boot.p_noninferiority, boot.p_superiority

Why a bootstrap (docs/registry-and-gate.md, "Multi-label: the paired bootstrap"): McNemar on exact-set
matches throws away partial credit, per-label McNemar needs one test per label and a multiplicity
correction and still does not test the primary metric; resampling the compared rows (the same rows for
both models) tests the difference of the primary metric itself. Every metric here is a function of the
per-label true positive, false positive and false negative counts summed over rows (and of the rows whose
set is exact), so one bootstrap replicate is a weighted sum of per-row counts: no model is re-run.

A label set as one string is the names joined by "|" (stages/core/label_sets.py `LABEL_SET_SEPARATOR`;
split with `split_set`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

import numpy as np

from stages.config.register import GateMetric
from stages.core.label_sets import split_set

BOOTSTRAP_SEED = 31  # the resampled rows are the same at every run: a decision never changes by chance
# the primary metrics the gate can compare multi-label models on (all: higher is better): every name
# `register.gate.primary_metric` accepts but `auto`
SET_METRICS = tuple(m for m in get_args(GateMetric) if m != "auto")
_CHUNK = 256  # replicates drawn at once (memory: _CHUNK x rows weights)


def indicator(sets: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """(n, k) 0/1 rows of label-set strings over `names` (a name outside `names` is an error)."""
    col = {name: j for j, name in enumerate(names)}
    out = np.zeros((len(sets), len(names)), dtype=np.int64)
    for i, s in enumerate(sets):
        for name in split_set(s):
            if name not in col:
                raise ValueError(f"label {name!r} of set {s!r} is not one of {list(names)}")
            out[i, col[name]] = 1
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def metric_from_counts(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, exact: np.ndarray, rows: np.ndarray, metric: str
) -> np.ndarray:
    """`metric` from summed counts: tp, fp, fn (..., k) per label, exact and rows (...) (the rows whose set
    is right, and all rows). Equal to scikit-learn's on indicator matrices with zero_division=0."""
    if metric in ("accuracy", "subset_accuracy"):
        return _ratio(exact, rows)
    average, kind = metric.split("_")
    if average == "micro":
        tp, fp, fn = tp.sum(-1), fp.sum(-1), fn.sum(-1)
    score = {
        "f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn),
        "precision": lambda: _ratio(tp, tp + fp),
        "recall": lambda: _ratio(tp, tp + fn),
    }[kind]()
    if average == "micro":
        return score
    if average == "macro":
        return np.asarray(score.mean(-1), dtype=np.float64)
    support = tp + fn
    return _ratio((score * support).sum(-1), support.sum(-1))


def set_score(y: np.ndarray, pred: np.ndarray, metric: str) -> float:
    """`metric` of indicator predictions `pred` against `y`, both (n, k)."""
    tp, fp, fn, exact = _row_counts(y, pred)
    return float(metric_from_counts(tp.sum(0), fp.sum(0), fn.sum(0), exact.sum(), np.array(len(y)), metric))


def _row_counts(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: tp, fp, fn per label (n, k) and whether the set is exact (n,)."""
    tp = (y & pred).astype(np.float64)
    fp = ((1 - y) & pred).astype(np.float64)
    fn = (y & (1 - pred)).astype(np.float64)
    return tp, fp, fn, (y == pred).all(1).astype(np.float64)


@dataclass(frozen=True)
class Bootstrap:
    """The paired bootstrap of (candidate - other) on one metric; p-values by inverting percentile bounds."""

    candidate: float
    other: float
    samples: int
    ci95: tuple[float, float]  # 2.5% and 97.5% quantiles of the resampled difference
    p_noninferiority: float  # H0: difference <= -margin (small: the candidate is not worse by the margin)
    p_worse: float  # H0: difference >= 0 (small: the candidate is significantly worse)
    p_superiority: float  # two-sided, H0: difference = 0

    @property
    def difference(self) -> float:
        return self.candidate - self.other


def resampled_differences(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, metric: str, samples: int, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """`samples` differences metric(a) - metric(b), each on the same n rows drawn with replacement."""
    n = len(y)
    ca, cb = _row_counts(y, a), _row_counts(y, b)
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, samples, _CHUNK):
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=min(_CHUNK, samples - start)).astype(np.float64)
        rows = w.sum(1)
        ma = metric_from_counts(w @ ca[0], w @ ca[1], w @ ca[2], w @ ca[3], rows, metric)
        mb = metric_from_counts(w @ cb[0], w @ cb[1], w @ cb[2], w @ cb[3], rows, metric)
        out.append(ma - mb)
    return np.concatenate(out)


def paired_bootstrap(
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    metric: str,
    samples: int,
    margin: float = 0.0,
    seed: int = BOOTSTRAP_SEED,
) -> Bootstrap:
    """Candidate `a` against `b` on the rows of `y` (indicator matrices, n >= 1): the observed scores, and
    one-sided and two-sided p-values with one added to each count (never 0: (1 + hits) / (samples + 1))."""
    d = resampled_differences(y, a, b, metric, samples, seed)
    tol = 1e-12

    def share(hits: int) -> float:
        return (1 + hits) / (samples + 1)

    at_most_zero, at_least_zero = int((d <= tol).sum()), int((d >= -tol).sum())
    return Bootstrap(
        candidate=set_score(y, a, metric),
        other=set_score(y, b, metric),
        samples=samples,
        ci95=(float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))),
        p_noninferiority=share(int((d <= -margin + tol).sum())),
        p_worse=share(at_least_zero),
        p_superiority=min(1.0, 2 * share(min(at_most_zero, at_least_zero))),
    )


def per_label(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per label: positive rows, recall and F1 of `pred` (zero where undefined)."""
    tp, fp, fn, _ = (x.sum(0) for x in _row_counts(y, pred))
    return y.sum(0), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)
