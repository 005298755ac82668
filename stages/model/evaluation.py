"""evaluate's figures: the baseline's test probabilities, and the metrics of both models side by side.

    base = baseline_proba(train_texts, train_ids, test_texts, len(names), params)
    metrics = build_metrics(y, probs, base, names, ece_bins=10, examples_per_s=speed, device=device)

Both models are scored on the same test rows: the fine-tuned model's probabilities come from
`stages/evaluate.py`'s `predict_proba` (the served model's own window routine, which MLflow's module
holds: the training core imports none of it), the baseline (TF-IDF + logistic regression) is fit here
on the full cleaned text of the train split. `stages/evaluate.py` writes what these return.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stages.config.evaluate import EvaluateParams
from stages.core.label_sets import MULTI_LABEL_TASK
from stages.model.metrics import PRIMARY_METRIC, classification_metrics
from stages.model.multilabel import decide, multilabel_metrics
from stages.serving.meanpool import MULTI_LABEL


class EvaluateError(ValueError):
    """The model and the data do not fit together; the message says how to fix it."""


def check_model_labels(config: dict[str, Any], names: list[str], model_dir: Path, labels_path: Path) -> None:
    """The model's id2label (its config.json) must be labels.json, or every prediction would be misnamed."""
    id2label = config.get("id2label") or {}
    have = [str(id2label[k]) for k in sorted(id2label, key=int)]
    if have != names:
        raise EvaluateError(
            f"{model_dir}: the model was trained for labels {have} but {labels_path} lists {names}; they "
            "come from different runs. Rerun `dvc repro finetune`."
        )


def baseline_vectorizer(p: EvaluateParams) -> Any:
    """The baselines' TF-IDF: sublinear tf, word 1..`baseline_ngram_max`-grams, accents stripped, lower case."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=(1, p.baseline_ngram_max),
        min_df=p.baseline_min_df,
        max_features=p.baseline_max_features,
        sublinear_tf=True,
        strip_accents="unicode",
        lowercase=True,
    )


def baseline_proba(
    train_text: list[str], train_y: list[int], test_text: list[str], n_classes: int, p: EvaluateParams
) -> np.ndarray:
    """TF-IDF (sublinear tf, word 1..n-grams) + multinomial logistic regression fit on train; test probabilities."""
    from sklearn.linear_model import LogisticRegression

    vec = baseline_vectorizer(p)
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
    if metrics.get("task") == MULTI_LABEL_TASK:
        return multilabel_headline(metrics)
    return {
        "test": {k: metrics["model"][k] for k in HEADLINE_KEYS},
        "test_baseline": {k: metrics["baseline"][k] for k in HEADLINE_KEYS},
        "test_delta": {k: metrics["delta"][k] for k in ("accuracy", "macro_f1")},
        "test_rows": metrics["test_rows"],
    }


# --- label sets (label.task multi_label): taken only when the splits' `label` is a list of class ids ---

MULTI_LABEL_PRIMARY_METRIC = "micro_f1"
MULTI_LABEL_DELTA_KEYS = ("accuracy", "micro_f1", "macro_f1", "weighted_f1")
MULTI_LABEL_HEADLINE_KEYS = ("accuracy", "micro_f1", "macro_f1", "hamming_loss", "ece")


def check_model_task(config: dict[str, Any], label_sets: bool, model_dir: Path) -> bool:
    """The model's head must suit the splits: a multi-label head (`problem_type` multi_label_classification)
    for label sets, a single-label one for one class per text. Returns `label_sets`."""
    multi = config.get("problem_type") == MULTI_LABEL
    if multi != label_sets:
        have = "a multi-label" if multi else "a single-label"
        want = "label sets (label.task multi_label)" if label_sets else "one class per text"
        raise EvaluateError(
            f"{model_dir}: the model has {have} head but the splits hold {want}; they come from different "
            "runs. Rerun `dvc repro finetune`."
        )
    return label_sets


def model_thresholds(config: dict[str, Any], names: list[str], model_dir: Path) -> np.ndarray:
    """The per-label decision thresholds finetune tuned on the validation split (config.json's
    `ftpipe_thresholds`, {name: t}), in id order."""
    saved = config.get("ftpipe_thresholds")
    if not isinstance(saved, dict) or sorted(saved) != sorted(names):
        raise EvaluateError(
            f"{model_dir}/config.json: `ftpipe_thresholds` should give a decision threshold for each of "
            f"the labels {names}, got {saved!r}. finetune tunes one per label on the validation split and "
            "saves them with a multi-label model; a folder without them was not written by this "
            "finetune. Rerun `dvc repro finetune`."
        )
    out = np.array([float(saved[n]) for n in names], dtype=np.float64)
    if not ((out > 0.0) & (out < 1.0)).all():
        raise EvaluateError(
            f"{model_dir}/config.json: every `ftpipe_thresholds` value must lie in (0, 1), got {saved}. "
            "Rerun `dvc repro finetune`."
        )
    return out


def baseline_multilabel_proba(
    train_text: list[str], train_y: np.ndarray, texts: list[list[str]], p: EvaluateParams
) -> list[np.ndarray]:
    """One-vs-rest TF-IDF + logistic regression: the single-label baseline's vectorizer fit on the train
    split, one binary logistic regression per label; each of `texts` (e.g. validation, test) gets its
    (n, k) probabilities. A label that every (or no) train row carries gets that constant probability."""
    from sklearn.linear_model import LogisticRegression

    vec = baseline_vectorizer(p)
    x_train = vec.fit_transform(train_text)
    xs = [vec.transform(t) for t in texts]
    outs = [np.zeros((x.shape[0], train_y.shape[1])) for x in xs]
    for j in range(train_y.shape[1]):
        col = np.asarray(train_y[:, j])
        if col.min() == col.max():  # one class in train: nothing to fit
            for out in outs:
                out[:, j] = float(col[0]) if len(col) else 0.0
            continue
        clf = LogisticRegression(C=p.baseline_c, max_iter=p.baseline_max_iter).fit(x_train, col)
        for out, x in zip(outs, xs, strict=True):
            out[:, j] = clf.predict_proba(x)[:, 1]
    return outs


def build_multilabel_metrics(
    y_true: np.ndarray,
    model: tuple[np.ndarray, np.ndarray],
    baseline: tuple[np.ndarray, np.ndarray],
    names: list[str],
    ece_bins: int,
    examples_per_s: float,
    device: str,
) -> dict[str, Any]:
    """reports/metrics.json for label sets: `model` and `baseline` are each (probabilities, thresholds);
    their blocks hold `multilabel_metrics` of the decided sets plus the thresholds, `task` says multi_label."""
    blocks = {}
    for key, (probs, thresholds) in (("model", model), ("baseline", baseline)):
        block = multilabel_metrics(y_true, decide(probs, thresholds), names, probs, ece_bins)
        block["thresholds"] = {n: float(t) for n, t in zip(names, thresholds, strict=True)}
        blocks[key] = block
    return {
        "primary_metric": MULTI_LABEL_PRIMARY_METRIC,
        "task": MULTI_LABEL_TASK,
        "model": blocks["model"],
        "baseline": blocks["baseline"],
        "delta": {k: blocks["model"][k] - blocks["baseline"][k] for k in MULTI_LABEL_DELTA_KEYS},
        "inference": {"examples_per_s": round(float(examples_per_s), 3), "device": device},
        "test_rows": int(len(y_true)),
    }


def multilabel_headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """reports/headline.json for label sets: subset accuracy, micro- and macro-F1, Hamming loss and ECE of
    the model and the baseline, the micro- and macro-F1 difference and the test rows."""
    return {
        "test": {k: metrics["model"][k] for k in MULTI_LABEL_HEADLINE_KEYS},
        "test_baseline": {k: metrics["baseline"][k] for k in MULTI_LABEL_HEADLINE_KEYS},
        "test_delta": {k: metrics["delta"][k] for k in ("micro_f1", "macro_f1")},
        "test_rows": metrics["test_rows"],
    }
