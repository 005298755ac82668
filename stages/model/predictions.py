"""evaluate's per-example outputs: the predictions table, the confusion data and PNG, the worst errors.

    preds = predictions_table(ids, y, probs, base_probs, names)
    write_csv(Path("reports/predictions.csv"), preds)

The CSV files escape string cells that a spreadsheet would run as formulas (`stages/core/csvsafe.py`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stages.core.csvsafe import escape_frame
from stages.core.io import atomic_file
from stages.core.label_sets import NO_LABEL, join_set, split_set
from stages.model.multilabel import per_text_f1


def predictions_table(
    ids: list[str], y_true: np.ndarray, probs: np.ndarray, base_probs: np.ndarray, names: list[str]
) -> pd.DataFrame:
    """One row per test example: truth, prediction, its probability, correctness, baseline, all probabilities."""
    pred = probs.argmax(axis=1)
    base_pred = base_probs.argmax(axis=1)
    df = pd.DataFrame(
        {
            "id": ids,
            "label": [names[i] for i in y_true],
            "pred": [names[i] for i in pred],
            "score": probs[np.arange(len(pred)), pred],
            "correct": (pred == y_true).astype(int),
            "baseline_pred": [names[i] for i in base_pred],
            "baseline_correct": (base_pred == y_true).astype(int),
        }
    )
    for k, name in enumerate(names):
        df[f"prob_{name}"] = probs[:, k]
    return df


def confusion_records(preds: pd.DataFrame) -> list[dict[str, str]]:
    """`dvc plots` confusion-template data: one {actual, predicted} per example."""
    return [{"actual": a, "predicted": b} for a, b in zip(preds["label"], preds["pred"], strict=True)]


def worst_errors(preds: pd.DataFrame, texts: list[str], n: int, excerpt_chars: int) -> pd.DataFrame:
    """The `n` mistakes the model was most sure of, with the probability it gave the true class."""
    df = preds.assign(text=texts)
    wrong = df[df["correct"] == 0].copy()
    wrong["prob_true"] = [row[f"prob_{row['label']}"] for _, row in wrong.iterrows()]
    wrong = wrong.sort_values(["score", "id"], ascending=[False, True]).head(n)
    cut = wrong["text"].str.slice(0, excerpt_chars)
    wrong["text"] = np.where(wrong["text"].str.len() > excerpt_chars, cut + " ...", cut)
    return wrong[["id", "label", "pred", "score", "prob_true", "text"]].reset_index(drop=True)


def plot_confusion(preds: pd.DataFrame, names: list[str], path: Path, title: str | None = None) -> None:
    """Counts matrix (rows: actual, columns: predicted) as a PNG; the title gives the accuracy unless
    `title` is given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(preds["label"], preds["pred"], labels=names)
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 2.5, 1.1 * len(names) + 1.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                str(int(cm[i, j])),
                ha="center",
                va="center",
                color="white" if cm[i, j] > cm.max() / 2 else "black",
            )
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"test confusion matrix (accuracy {acc:.3f})" if title is None else title)
    fig.tight_layout()
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)


def write_csv(path: Path, df: pd.DataFrame) -> None:
    """Write `df` for a spreadsheet: string cells that a spreadsheet would run as formulas are escaped."""
    with atomic_file(path) as fh:
        escape_frame(df).to_csv(fh, index=False, float_format="%.6f")


# --- label sets (label.task multi_label): a set per text, written as one string (`join_set`) ---


def multilabel_predictions_table(
    ids: list[str],
    y_true: np.ndarray,
    probs: np.ndarray,
    pred: np.ndarray,
    base_pred: np.ndarray,
    names: list[str],
) -> pd.DataFrame:
    """One row per test text: the true and predicted sets as strings, the mean probability of the predicted
    labels, whether the sets are equal, the text's F1, the baseline's set, and every label's probability."""
    chosen = np.where(pred == 1, probs, 0.0).sum(axis=1) / pred.sum(axis=1)  # decide gives >= 1 label
    df = pd.DataFrame(
        {
            "id": ids,
            "label": set_strings(y_true, names),
            "pred": set_strings(pred, names),
            "score": chosen,
            "correct": (pred == y_true).all(axis=1).astype(int),
            "f1": per_text_f1(y_true, pred),
            "baseline_pred": set_strings(base_pred, names),
            "baseline_correct": (base_pred == y_true).all(axis=1).astype(int),
            "baseline_f1": per_text_f1(y_true, base_pred),
        }
    )
    for k, name in enumerate(names):
        df[f"prob_{name}"] = probs[:, k]
    return df


def set_strings(indicator: np.ndarray, names: list[str]) -> list[str]:
    """Each row of a 0/1 matrix as its label-set string (names in id order, `join_set`)."""
    return [join_set([names[j] for j in np.flatnonzero(row)]) for row in indicator]


def multilabel_confusion_records(preds: pd.DataFrame, names: list[str]) -> list[dict[str, str]]:
    """`dvc plots` confusion data for label sets: one {actual, predicted} per (text, label) pair with the
    label in the true or the predicted set (labels in id order); the side without it says `NO_LABEL`."""
    order = {n: i for i, n in enumerate(names)}
    out: list[dict[str, str]] = []
    for true_s, pred_s in zip(preds["label"], preds["pred"], strict=True):
        have, got = set(split_set(true_s)), set(split_set(pred_s))
        for name in sorted(have | got, key=order.__getitem__):
            out.append(
                {"actual": name if name in have else NO_LABEL, "predicted": name if name in got else NO_LABEL}
            )
    return out


def multilabel_worst_errors(
    preds: pd.DataFrame, texts: list[str], n: int, excerpt_chars: int
) -> pd.DataFrame:
    """The `n` texts whose predicted set is furthest from the true one (lowest per-text F1), the ones the
    model was most sure of (mean probability of its chosen labels) first."""
    df = preds.assign(text=texts)
    wrong = df[df["correct"] == 0].sort_values(["f1", "score", "id"], ascending=[True, False, True]).head(n)
    cut = wrong["text"].str.slice(0, excerpt_chars)
    wrong = wrong.assign(text=np.where(wrong["text"].str.len() > excerpt_chars, cut + " ...", cut))
    return wrong[["id", "label", "pred", "score", "f1", "text"]].reset_index(drop=True)


def plot_multilabel_confusion(records: list[dict[str, str]], names: list[str], path: Path) -> None:
    """The (text, label) confusion counts as a PNG: the labels plus `NO_LABEL` on both axes (a row of
    `NO_LABEL` counts labels predicted but absent, its column labels missed)."""
    pairs = pd.DataFrame(
        {"label": [r["actual"] for r in records], "pred": [r["predicted"] for r in records]}, dtype=object
    )
    agree = int((pairs["label"] == pairs["pred"]).sum())
    title = f"test (text, label) pairs: {agree} of {len(pairs)} agree"
    plot_confusion(pairs, [*names, NO_LABEL], path, title)
