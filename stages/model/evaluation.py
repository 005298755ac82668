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
from stages.model.metrics import PRIMARY_METRIC, classification_metrics


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
