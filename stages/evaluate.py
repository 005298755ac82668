"""evaluate: score the fine-tuned model on the test split, beside a TF-IDF + logistic-regression baseline.

    python -m stages.evaluate --splits data/processed/splits --labels data/processed/labels.json \
        --model models/model --metrics reports/metrics.json --headline reports/headline.json \
        --predictions reports/predictions.csv --confusion reports/confusion.json \
        --confusion-png reports/confusion.png --errors reports/worst_errors.csv

Both models are scored on the same test rows: accuracy, macro and weighted precision/recall/F1, expected
calibration error and per-class figures, plus the difference (model - baseline). The fine-tuned model
reads the test split's token windows (cut by the tokenize stage's `windows` and truncation policy) and
scores a text by the mean of its windows' probabilities; the baseline is fit on the train split's full
cleaned text, so it may see words past the transformer's budget. Also
written: one row per test example with every class probability (the register gate's McNemar test pairs
them by id), the confusion matrix as `dvc plots` data and a PNG, and the highest-confidence mistakes.
The CSV files escape string cells that a spreadsheet would run as formulas (`stages/core/csvsafe.py`).

Before it reads the model folder, evaluate checks every file against the folder's `MANIFEST.sha256`
(written by finetune; `stages/serving/manifest.py`) and refuses a changed, added or missing file. The
mean-pool head is ftpipe's own class, never the folder's code; `tokenize.trust_remote_code` (read from
params.yaml with tokenize's own class, never from a file in the folder) applies to other heads.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stages.config.evaluate import EvaluateParams
from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.config.tokenize import TokenizeParams
from stages.core.csvsafe import escape_frame
from stages.core.io import atomic_file, read_json, write_json
from stages.core.logs import setup_logging
from stages.data.windows import flatten, row_windows
from stages.model.metrics import PRIMARY_METRIC, classification_metrics, classification_report_text
from stages.reports.evaluate import MetricsReport
from stages.serving.manifest import verify_folder
from stages.serving.meanpool import load_classifier, load_tokenizer
from stages.serving.textclf import window_probabilities

MODEL_FIX = (
    "Rerun `dvc repro finetune` (or `dvc checkout models/model` to restore the folder DVC recorded); "
    "`dvc status` shows what changed."
)


class EvaluateError(ValueError):
    """The model and the data do not fit together; the message says how to fix it."""


def load_label_names(path: Path) -> list[str]:
    """Class names in id order from labels.json."""
    data = read_json(path)
    return [str(data[str(i)]) for i in range(len(data))]


def check_model_labels(config: dict[str, Any], names: list[str], model_dir: Path, labels_path: Path) -> None:
    """The model's id2label (its config.json) must be labels.json, or every prediction would be misnamed."""
    id2label = config.get("id2label") or {}
    have = [str(id2label[k]) for k in sorted(id2label, key=int)]
    if have != names:
        raise EvaluateError(
            f"{model_dir}: the model was trained for labels {have} but {labels_path} lists {names}; they "
            "come from different runs. Rerun `dvc repro finetune`."
        )


def predict_proba(
    model_dir: Path, ds: Any, batch_size: int, trust_remote_code: bool = False
) -> tuple[np.ndarray, float, str]:
    """Class probabilities for every row of `ds` (in order), examples/s and the device used.

    A row's probabilities are the mean over its token windows (one window unless the tokenize stage
    cut the text into several), computed by the served model's own routine
    (`stages/serving/textclf.py::window_probabilities`: longest windows first, batches of at most
    `batch_size` x the longest window's tokens), always in fp32 and never quantized, so the metrics do
    not depend on the CPU. The timing covers collation and forward passes, and examples/s counts rows,
    not windows. A mean-pool model is built from ftpipe's own head (stages/serving/meanpool.py), never
    from code in the folder; `trust_remote_code` (`tokenize.trust_remote_code`) applies to other
    architectures only.
    """
    import torch
    from transformers import DataCollatorWithPadding

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = load_tokenizer(str(model_dir), trust_remote_code)
    model: Any = load_classifier(str(model_dir), trust_remote_code, dtype=torch.float32)
    model.to(device).eval()
    windows, owner = flatten(row_windows(ds, list(tok.model_input_names)))
    longest = max((len(w["input_ids"]) for w in windows), default=1)
    start = time.perf_counter()
    probs = window_probabilities(
        model, DataCollatorWithPadding(tok), windows, owner.tolist(), len(ds), batch_size * longest, device
    )
    seconds = time.perf_counter() - start
    return probs, (len(ds) / seconds if seconds > 0 else 0.0), device


def baseline_proba(
    train_text: list[str], train_y: list[int], test_text: list[str], n_classes: int, p: EvaluateParams
) -> np.ndarray:
    """TF-IDF (sublinear tf, word 1..n-grams) + multinomial logistic regression fit on train; test probabilities."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(
        ngram_range=(1, p.baseline_ngram_max),
        min_df=p.baseline_min_df,
        max_features=p.baseline_max_features,
        sublinear_tf=True,
        strip_accents="unicode",
        lowercase=True,
    )
    clf = LogisticRegression(C=p.baseline_c, max_iter=p.baseline_max_iter)
    clf.fit(vec.fit_transform(train_text), train_y)
    out = np.zeros((len(test_text), n_classes))
    out[:, clf.classes_] = clf.predict_proba(vec.transform(test_text))
    return out


def build_metrics(
    y_true: np.ndarray,
    model_probs: np.ndarray,
    base_probs: np.ndarray,
    names: list[str],
    ece_bins: int,
    examples_per_s: float,
    device: str,
) -> dict[str, Any]:
    """reports/metrics.json: model and baseline figures side by side, their difference, inference speed."""
    model = classification_metrics(y_true, model_probs.argmax(axis=1), names, model_probs, ece_bins)
    base = classification_metrics(y_true, base_probs.argmax(axis=1), names, base_probs, ece_bins)
    return {
        "primary_metric": PRIMARY_METRIC,
        "model": model,
        "baseline": base,
        "delta": {k: model[k] - base[k] for k in ("accuracy", "macro_f1", "weighted_f1")},
        "inference": {"examples_per_s": round(float(examples_per_s), 3), "device": device},
        "test_rows": int(len(y_true)),
    }


HEADLINE_KEYS = ("accuracy", "macro_f1", "ece")


def headline_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """reports/headline.json, the one file `dvc metrics show` lists: the model's test accuracy, macro-F1 and
    ECE (`test.*`, as the registry names them), the baseline's, their difference and the test rows. DVC
    sorts the columns by name, so these names put the model first; per-class figures stay in metrics.json."""
    return {
        "test": {k: metrics["model"][k] for k in HEADLINE_KEYS},
        "test_baseline": {k: metrics["baseline"][k] for k in HEADLINE_KEYS},
        "test_delta": {k: metrics["delta"][k] for k in ("accuracy", "macro_f1")},
        "test_rows": metrics["test_rows"],
    }


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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "evaluate")
    args = ap.parse_args(argv)
    log = setup_logging("evaluate")
    p = load_section("evaluate", EvaluateParams, args.params)

    from datasets import load_from_disk

    model_dir, labels_path = Path(args.model), Path(args.labels)
    # before any file of the folder is read: every file as finetune wrote it, nothing added
    verify_folder(model_dir, fix=MODEL_FIX)
    # whether a checkpoint's own code may run: the project's params decide, never a file in the folder
    trust = load_section("tokenize", TokenizeParams, args.params).trust_remote_code
    names = load_label_names(labels_path)
    check_model_labels(read_json(model_dir / "config.json"), names, model_dir, labels_path)
    dd = load_from_disk(args.splits)
    train, test = dd["train"], dd["test"]
    y = np.asarray(test["label"])

    probs, speed, device = predict_proba(model_dir, test, p.batch_size, trust)
    base = baseline_proba(list(train["text"]), list(train["label"]), list(test["text"]), len(names), p)
    metrics = build_metrics(y, probs, base, names, p.ece_bins, speed, device)
    preds = predictions_table(list(test["id"]), y, probs, base, names)

    write_json(args.metrics, MetricsReport.model_validate(metrics).dump())  # the summary reads it
    write_json(Path(args.headline), headline_metrics(metrics))
    write_csv(Path(args.predictions), preds)
    write_json(args.confusion, confusion_records(preds))
    plot_confusion(preds, names, Path(args.confusion_png))
    write_csv(Path(args.errors), worst_errors(preds, list(test["text"]), p.worst_errors, p.excerpt_chars))
    log.info(
        "test classification report (%d rows):\n%s",
        len(y),
        classification_report_text(y, probs.argmax(axis=1), names),
    )
    m, b = metrics["model"], metrics["baseline"]
    log.info(
        "model accuracy %.4f macro-F1 %.4f ECE %.4f | baseline accuracy %.4f macro-F1 %.4f | "
        "delta macro-F1 %+.4f | %.1f examples/s on %s",
        m["accuracy"],
        m["macro_f1"],
        m["ece"],
        b["accuracy"],
        b["macro_f1"],
        metrics["delta"]["macro_f1"],
        speed,
        device,
    )


if __name__ == "__main__":
    main()
