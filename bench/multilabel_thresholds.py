"""Per-label decision thresholds against one for all labels, for a multi-label model of a project.

    cd <project with a multi-label models/model and data/processed>; python -m bench.multilabel_thresholds

Recomputes the validation and test probabilities with evaluate's routine (`stages/evaluate.py`
`predict_proba`), then scores the test split under: the saved thresholds (config.json
`ftpipe_thresholds`), per-label thresholds tuned again on validation, 0.5 for every label, 0.5 for labels
with fewer than N validation positives, and one threshold for all labels tuned on validation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from datasets import DatasetDict, load_from_disk

from stages.data.label_map import read_label_names
from stages.evaluate import predict_proba
from stages.model.multilabel import decide, multi_hot, multilabel_metrics, tune_thresholds


def main() -> None:
    dd = load_from_disk("data/processed/splits")
    assert isinstance(dd, DatasetDict)
    names = read_label_names(Path("data/processed/labels.json"))  # id order (the file sorts its keys as text)
    k = len(names)
    pv, _, _ = predict_proba(Path("models/model"), dd["validation"], 64)
    pt, _, _ = predict_proba(Path("models/model"), dd["test"], 64)
    yv, yt = multi_hot(dd["validation"]["label"], k), multi_hot(dd["test"]["label"], k)

    def score(t: np.ndarray) -> str:
        m = multilabel_metrics(yt, decide(pt, t), names)
        return f"test micro-F1 {m['micro_f1']:.4f}, macro-F1 {m['macro_f1']:.4f}"

    saved = json.loads(Path("models/model/config.json").read_text())["ftpipe_thresholds"]
    tuned = tune_thresholds(yv, pv)
    print("saved per-label:", score(np.array([saved[n] for n in names])))
    print("per-label tuned again:", score(tuned))
    print("0.5 for all:", score(np.full(k, 0.5)))
    positives = yv.sum(axis=0)
    for n in (5, 8):
        t = tuned.copy()
        t[positives < n] = 0.5
        print(f"0.5 under {n} validation positives ({int((positives < n).sum())} labels):", score(t))
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    one = max(grid, key=lambda g: multilabel_metrics(yv, decide(pv, np.full(k, g)), names)["micro_f1"])
    print(f"one for all, tuned on validation ({one:.2f}):", score(np.full(k, one)))


if __name__ == "__main__":
    main()
