"""validate's figures of label sets (`label.task: multi_label`): labels per text and the pairs seen together.

    multi = is_multi(frames["train"]["label"])          # a list of label names per row
    figures = label_set_profile(frames)                 # {"cardinality": {split: ...}, "top_pairs": {split: ...}}

Cardinality is the number of labels a text carries (mean, median, max, and rows per count in `hist`,
keyed "1", "2", ...); a pair's `rows` is how many texts carry both labels and `share` that count over
the split's rows. The compact profile keeps both, so drift can compare the cardinality of two datasets.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

TOP_PAIRS = 20  # label pairs kept per split, most frequent first


def is_multi(labels: pd.Series) -> bool:
    """Whether a split's `label` column holds label sets (lists) rather than one name per row."""
    return len(labels) > 0 and not isinstance(labels.iloc[0], str)


def has_label(labels: pd.Series, name: str) -> pd.Series:
    """Rows whose label is `name`, or whose label set holds it."""
    if is_multi(labels):
        return pd.Series([name in s for s in labels], index=labels.index, dtype=bool)
    return labels == name


def each_label(labels: pd.Series) -> pd.Series:
    """One entry per (row, label): the label column itself for single labels, exploded for sets."""
    return labels.explode().dropna() if is_multi(labels) else labels


def cardinality(labels: pd.Series) -> dict[str, Any]:
    """Labels per text: mean, median, max, and rows per count ("1", "2", ...)."""
    sizes = np.array([len(s) for s in labels], dtype=float)
    if sizes.size == 0:
        return {"mean": 0.0, "median": 0.0, "max": 0, "hist": {}}
    hist = Counter(int(n) for n in sizes)
    return {
        "mean": round(float(sizes.mean()), 4),
        "median": float(np.median(sizes)),
        "max": int(sizes.max()),
        "hist": {str(k): hist[k] for k in sorted(hist)},
    }


def top_pairs(labels: pd.Series, top: int = TOP_PAIRS) -> list[dict[str, Any]]:
    """The `top` label pairs carried together by most texts (ties by names), with rows and share."""
    pairs = Counter(pair for s in labels for pair in combinations(sorted(s), 2))
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    n = max(len(labels), 1)
    return [{"labels": list(pair), "rows": k, "share": round(k / n, 4)} for pair, k in ranked]


def label_set_profile(frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Per split, the cardinality and the top co-occurring pairs of the label sets."""
    return {
        "cardinality": {k: cardinality(v["label"]) for k, v in frames.items()},
        "top_pairs": {k: top_pairs(v["label"]) for k, v in frames.items()},
    }
