"""What the register stage reads, cross-checked: the candidate, its trained-on record, profile and curves.

    cand = load_candidate("models/model", "reports/metrics.json", "reports/predictions.csv",
                          "data/processed/splits", "data/processed/labels.json")

The model folder, evaluate's metrics (read through `MetricsReport`) and predictions, the test split and
the label map must tell one story (same labels, same test ids, the same task); anything stale is a
`RegisterError` that names the stage to rerun. Label sets (`label.task: multi_label`: the test split's
label is a list of ids, metrics.json says `task: multi_label`) give a candidate whose label, pred and
baseline_pred are set strings ("a|b", names in id order; stages/model/multilabel.py `join_set`). The trained-on record, the data profile, the finetune report and the
training curves are optional: register works without them, and says what was missing.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
from datasets import Dataset, DatasetDict, List, load_from_disk
from pydantic import ValidationError

from stages.core.csvsafe import read_csv
from stages.core.io import read_json
from stages.core.label_sets import MULTI_LABEL_TASK, join_set
from stages.data.label_map import read_label_names
from stages.data.trained_on import TrainedOn
from stages.gate.checks import PRIMARY_METRICS, Candidate
from stages.gate.sets import SET_METRICS
from stages.reports.base import problems
from stages.reports.evaluate import MetricsReport
from stages.reports.finetune import FinetuneReport
from stages.reports.profile import DataProfile, as_profile


class RegisterError(ValueError):
    """The inputs cannot be registered, or the registered model is broken; the message says why."""


def load_candidate(
    model_dir: str | Path,
    metrics_path: str | Path,
    predictions_path: str | Path,
    splits: str | Path | DatasetDict,
    labels_path: str | Path,
) -> Candidate:
    """Read and cross-check the model folder, metrics, predictions, test split and label map."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise RegisterError(f"{model_dir}: no config.json; run the finetune stage (`dvc repro finetune`).")
    labels = read_label_names(labels_path)
    id2label = read_json(model_dir / "config.json").get("id2label", {})
    model_labels = [id2label[k] for k in sorted(id2label, key=int)] if id2label else []
    if model_labels != labels:
        raise RegisterError(
            f"{model_dir}/config.json id2label {model_labels} differs from {labels_path} {labels}; the model "
            "was trained on other labels. Rerun finetune (`dvc repro`) so both come from the same split."
        )
    metrics = read_metrics(metrics_path)
    primary = metrics.primary_metric
    # evaluate escaped formula-like cells (`'=...`); read_csv gives ids and labels back as they were
    preds = read_csv(predictions_path, dtype={"id": str, "label": str, "pred": str, "baseline_pred": str})
    missing_cols = {"id", "label", "pred", "correct"} - set(preds.columns)
    if missing_cols:
        raise RegisterError(
            f"{predictions_path}: columns {sorted(missing_cols)} are missing; rerun evaluate."
        )
    ds = splits if isinstance(splits, DatasetDict) else load_from_disk(str(splits))
    task = split_task(ds["test"], metrics.dump().get("task"), metrics_path, splits)
    test_df = split_rows(ds["test"])
    if set(test_df["id"]) != set(preds["id"]) or len(preds) != len(test_df):
        raise RegisterError(
            f"{predictions_path} has {len(preds)} rows that do not match the {len(test_df)} test examples of "
            f"{splits} by id; the predictions are stale. Rerun evaluate (`dvc repro evaluate`)."
        )
    # the baseline's per-row predictions: the first version's McNemar test against it
    kept = ["id", "pred", "correct"] + (["baseline_pred"] if "baseline_pred" in preds.columns else [])
    merged = test_df.merge(preds[kept], on="id", how="left", validate="one_to_one")
    merged["correct"] = merged["correct"].astype(int)
    if task == MULTI_LABEL_TASK:
        return Candidate(model_dir, metrics.dump(), primary, labels, merged, task=MULTI_LABEL_TASK)
    return Candidate(model_dir, metrics.dump(), primary, labels, merged)


def split_task(test: Dataset, task: object, metrics_path: str | Path, splits: object) -> str:
    """multi_label when the test split holds label sets, else single_label; metrics.json must agree."""
    mine = MULTI_LABEL_TASK if isinstance(test.features["label"], List) else "single_label"
    if (task == MULTI_LABEL_TASK) != (mine == MULTI_LABEL_TASK):
        raise RegisterError(
            f"{metrics_path} says task {task or 'single_label'}, the test split"
            f"{'' if isinstance(splits, DatasetDict) else f' of {splits}'} holds "
            f"{'label sets' if mine == MULTI_LABEL_TASK else 'one label per text'}; the metrics are stale. Rerun "
            "evaluate (`dvc repro evaluate`)."
        )
    return mine


def split_rows(test: Dataset) -> pd.DataFrame:
    """The test split's id, text, label (a name, or a label-set string) and group, ids as strings."""
    feature = test.features["label"]
    multi = isinstance(feature, List)
    names = feature.feature.names if multi else feature.names
    df = test.select_columns(
        [c for c in ("id", "text", "label", "group") if c in test.column_names]
    ).to_pandas()
    assert isinstance(df, pd.DataFrame)
    df["id"] = df["id"].astype(str)
    if multi:
        df["label"] = [join_set([names[i] for i in sorted(ids)]) for ids in df["label"]]
    else:
        df["label"] = [names[i] for i in df["label"]]
    return df


def read_metrics(path: str | Path) -> MetricsReport:
    """evaluate's reports/metrics.json, with a primary metric the gate knows and both sides measured on it."""
    try:
        metrics = MetricsReport.model_validate(read_json(path))
    except ValidationError as exc:
        raise RegisterError(
            f"{path}: not evaluate's metrics ({problems(exc)}); rerun the evaluate stage."
        ) from None
    primary = metrics.primary_metric
    known = PRIMARY_METRICS if metrics.dump().get("task") != MULTI_LABEL_TASK else SET_METRICS
    if primary not in known:
        raise RegisterError(f"{path}: primary_metric {primary!r} is not one of {', '.join(known)}.")
    for part, figures in (("model", metrics.model), ("baseline", metrics.baseline)):
        if primary not in figures.dump():
            raise RegisterError(f"{path}: `{part}.{primary}` is missing; rerun the evaluate stage.")
    return metrics


def trained_on_from_splits(splits: str | Path | DatasetDict) -> TrainedOn:
    """The ids and group keys of the train and validation splits."""
    ds = splits if isinstance(splits, DatasetDict) else load_from_disk(str(splits))
    parts = {}
    for name in ("train", "validation"):
        part = ds[name]
        groups = part["group"] if "group" in part.column_names else [None] * len(part)
        parts[name] = ([str(i) for i in part["id"]], list(groups))
    return TrainedOn.from_splits(parts)


def read_profile(path: str | Path | None) -> tuple[DataProfile | None, str]:
    """The data profile written by validate, or None with the reason (register works without it)."""
    if path is None:
        return None, "no data profile given (--profile)"
    if not Path(path).is_file():
        return None, f"no data profile: {path} is missing (run the validate stage)"
    profile = as_profile(read_json(path))
    if isinstance(profile, str):
        raise RegisterError(f"{path}: not validate's data profile ({profile}); rerun the validate stage.")
    return profile, f"data profile from {path}"


def read_finetune_report(path: str | Path) -> FinetuneReport | None:
    """The finetune stage's report, for the model card; None when there is none."""
    if not Path(path).is_file():
        return None
    try:
        return FinetuneReport.model_validate(read_json(path))
    except ValidationError as exc:
        raise RegisterError(
            f"{path}: not the finetune stage's report ({problems(exc)}); rerun finetune."
        ) from None


def history_metrics(path: Path | None) -> list[tuple[str, float, int]]:
    """Training curves as (`history.<key>`, value, step); accepts Trainer log_history or {key: [values]}."""
    if path is None or not path.is_file():
        return []
    hist = read_json(path)
    if isinstance(hist, dict) and isinstance(hist.get("log_history"), list):
        hist = hist["log_history"]
    out = []
    if isinstance(hist, list):
        for i, rec in enumerate(r for r in hist if isinstance(r, dict)):
            step = int(rec.get("step", i))
            out += [
                (f"history.{metric_key(k)}", float(v), step)
                for k, v in rec.items()
                if k != "step" and finite_number(v)
            ]
    elif isinstance(hist, dict):
        for k, vals in hist.items():
            if isinstance(vals, list):
                out += [
                    (f"history.{metric_key(k)}", float(v), i) for i, v in enumerate(vals) if finite_number(v)
                ]
    return out


def finite_number(v: object) -> bool:
    """A real, finite number (not a bool): what MLflow can log as a metric."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def metric_key(k: str) -> str:
    """`k` with the characters MLflow refuses in a metric name replaced by `_`."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(k))
