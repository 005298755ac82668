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


def plot_confusion(preds: pd.DataFrame, names: list[str], path: Path) -> None:
    """Counts matrix (rows: actual, columns: predicted) as a PNG."""
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
    ax.set_title(f"test confusion matrix (accuracy {acc:.3f})")
    fig.tight_layout()
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)


def write_csv(path: Path, df: pd.DataFrame) -> None:
    """Write `df` for a spreadsheet: string cells that a spreadsheet would run as formulas are escaped."""
    with atomic_file(path) as fh:
        escape_frame(df).to_csv(fh, index=False, float_format="%.6f")
