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

Label sets (label.task multi_label: the splits' `label` is a list of class ids) take their own branch. The
model's per-label sigmoid probabilities are decided by the thresholds finetune tuned on validation and saved
in config.json (`ftpipe_thresholds`); the baseline is one-vs-rest (one logistic regression per label on the
same TF-IDF), its thresholds tuned on the validation split's text the same way. metrics.json says
`task: multi_label` and `primary_metric: micro_f1`, with subset accuracy, Hamming loss, micro/macro/weighted
F1 and the thresholds (`stages/model/multilabel.py`); predictions.csv writes sets as names joined by "|",
with each text's F1; the confusion data has one record per (text, label) pair, "(none)" on the side that
lacks the label.

Before it reads the model folder, evaluate checks every file against the folder's `MANIFEST.sha256`
(written by finetune; `stages/serving/manifest.py`) and refuses a changed, added or missing file. The
mean-pool head is ftpipe's own class, never the folder's code; `tokenize.trust_remote_code` (read from
params.yaml with tokenize's own class, never from a file in the folder) applies to other heads.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stages.config.evaluate import EvaluateParams
from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.config.tokenize import TokenizeParams
from stages.core.io import read_json, write_json
from stages.core.logs import setup_logging
from stages.data.label_map import read_label_names
from stages.data.windows import flatten, row_windows
from stages.model.evaluation import (
    baseline_multilabel_proba,
    baseline_proba,
    build_metrics,
    build_multilabel_metrics,
    check_model_labels,
    check_model_task,
    headline_metrics,
    model_thresholds,
)
from stages.model.metrics import classification_report_text
from stages.model.multilabel import decide, multi_hot, tune_thresholds
from stages.model.predictions import (
    confusion_records,
    multilabel_confusion_records,
    multilabel_predictions_table,
    multilabel_worst_errors,
    plot_confusion,
    plot_multilabel_confusion,
    predictions_table,
    worst_errors,
    write_csv,
)
from stages.reports.evaluate import MetricsReport
from stages.serving.manifest import verify_folder
from stages.serving.meanpool import load_classifier, load_tokenizer
from stages.serving.textclf import window_probabilities

if TYPE_CHECKING:  # datasets is imported where the splits are read
    from datasets import Dataset, DatasetDict

MODEL_FIX = (
    "Rerun `dvc repro finetune` (or `dvc checkout models/model` to restore the folder DVC recorded); "
    "`dvc status` shows what changed."
)


def predict_proba(
    model_dir: Path, ds: Dataset, batch_size: int, trust_remote_code: bool = False
) -> tuple[np.ndarray, float, str]:
    """Class probabilities for every row of `ds` (in order), examples/s and the device used.

    A row's probabilities are the mean over its token windows (one window unless the tokenize stage
    cut the text into several), computed by the served model's own routine
    (`stages/serving/textclf.py::window_probabilities`: longest windows first, batches of at most
    `batch_size` x the longest window's tokens), always in fp32 and never quantized, so the metrics do
    not depend on the CPU. The timing covers collation and forward passes, and examples/s counts rows,
    not windows. A mean-pool model is built from ftpipe's own head (stages/serving/meanpool.py), never
    from code in the folder; `trust_remote_code` (`tokenize.trust_remote_code`) applies to other
    architectures only. It stays in this entry point, not in stages/model/evaluation.py: the served
    model's module imports MLflow, which the training core must not (pyproject.toml's import contracts).
    """
    import torch
    from transformers import DataCollatorWithPadding

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = load_tokenizer(str(model_dir), trust_remote_code)
    # Any: transformers types `PreTrainedModel.to` through a wrapper that mypy reads as taking the model
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "evaluate")
    args = ap.parse_args(argv)
    log = setup_logging("evaluate")
    p = load_section("evaluate", EvaluateParams, args.params)

    from datasets import List, load_from_disk

    model_dir, labels_path = Path(args.model), Path(args.labels)
    # before any file of the folder is read: every file as finetune wrote it, nothing added
    verify_folder(model_dir, fix=MODEL_FIX)
    # whether a checkpoint's own code may run: the project's params decide, never a file in the folder
    trust = load_section("tokenize", TokenizeParams, args.params).trust_remote_code
    names = read_label_names(labels_path)
    config = read_json(model_dir / "config.json")  # read once: labels, task and thresholds
    check_model_labels(config, names, model_dir, labels_path)
    dd = load_from_disk(args.splits)
    train, test = dd["train"], dd["test"]
    if check_model_task(config, isinstance(test.features["label"], List), model_dir):
        evaluate_label_sets(args, p, dd, names, trust, log, config)  # label.task multi_label
        return
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


def evaluate_label_sets(
    args: argparse.Namespace,
    p: EvaluateParams,
    dd: DatasetDict,
    names: list[str],
    trust: bool,
    log: logging.Logger,
    config: dict[str, Any],
) -> None:
    """evaluate on label sets (label.task multi_label): the model's sigmoid probabilities decided by the
    thresholds finetune saved with it; the one-vs-rest baseline fit on train, its thresholds tuned on
    validation (`tune_thresholds`, as finetune tunes the model's); both scored on the test rows."""
    model_dir, k = Path(args.model), len(names)
    train, test = dd["train"], dd["test"]
    thresholds = model_thresholds(config, names, model_dir)
    y = multi_hot(test["label"], k)
    probs, speed, device = predict_proba(model_dir, test, p.batch_size, trust)
    base_val, base_test = baseline_multilabel_proba(
        list(train["text"]),
        multi_hot(train["label"], k),
        [list(dd["validation"]["text"]), list(test["text"])],
        p,
    )
    base_t = tune_thresholds(multi_hot(dd["validation"]["label"], k), base_val)
    metrics = build_multilabel_metrics(
        y, (probs, thresholds), (base_test, base_t), names, p.ece_bins, speed, device
    )
    pred = decide(probs, thresholds)
    preds = multilabel_predictions_table(list(test["id"]), y, probs, pred, decide(base_test, base_t), names)

    write_json(args.metrics, MetricsReport.model_validate(metrics).dump())
    write_json(Path(args.headline), headline_metrics(metrics))
    write_csv(Path(args.predictions), preds)
    records = multilabel_confusion_records(preds, names)
    write_json(args.confusion, records)
    plot_multilabel_confusion(records, names, Path(args.confusion_png))
    errors = multilabel_worst_errors(preds, list(test["text"]), p.worst_errors, p.excerpt_chars)
    write_csv(Path(args.errors), errors)
    log.info(
        "test classification report (%d rows, label sets):\n%s",
        len(y),
        classification_report_text(y, pred, names),
    )
    m, b = metrics["model"], metrics["baseline"]
    log.info(
        "model subset accuracy %.4f micro-F1 %.4f macro-F1 %.4f Hamming %.4f | baseline micro-F1 %.4f "
        "macro-F1 %.4f | delta micro-F1 %+.4f | %.1f examples/s on %s",
        m["accuracy"],
        m["micro_f1"],
        m["macro_f1"],
        m["hamming_loss"],
        b["micro_f1"],
        b["macro_f1"],
        metrics["delta"]["micro_f1"],
        speed,
        device,
    )


if __name__ == "__main__":
    main()
