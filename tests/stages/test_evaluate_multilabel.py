"""evaluate on label sets (label.task multi_label): a tiny multi-label mean-pool model saved as finetune saves
one (problem_type, ftpipe_thresholds, the manifest), splits whose `label` is a list of class ids; the
reports' shapes, and metrics.json recomputed by hand from predictions.csv."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages import evaluate
from stages.core.label_sets import split_set
from stages.model.evaluation import EvaluateError
from stages.model.multilabel import multi_hot
from stages.serving.manifest import write_folder_manifest
from tests.conftest import TOPICS, build_splits
from tests.stages.test_evaluate import argv, outputs

NAMES = ["business", "sport", "tech"]
THRESHOLDS = {"business": 0.15, "sport": 0.15, "tech": 0.3}  # the tiny head's probabilities run low
BLOCK_KEYS = {
    "accuracy",
    "subset_accuracy",
    "hamming_loss",
    *(f"{a}_{m}" for a in ("micro", "macro", "weighted") for m in ("precision", "recall", "f1")),
    "ece",
    "label_cardinality",
    "per_class",
    "thresholds",
}


def label_set_splits(tiny_bert: Path, corpus: list[dict], out: Path) -> tuple[Path, Path]:
    """build_splits's splits with `label` turned into a List(ClassLabel): every third text also gets a
    second topic (its words appended to the text, the label added to the set)."""
    from datasets import ClassLabel, List, load_from_disk

    rows, sets = [], {}
    for i, r in enumerate(corpus):
        ids = [NAMES.index(r["label"])]
        text = r["text"]
        if i % 3 == 0:
            other = sorted(set(NAMES) - {r["label"]})[i % 2]
            text += " Also " + " ".join(TOPICS[other].split()[:5]) + "."
            ids = sorted([*ids, NAMES.index(other)])
        rows.append({**r, "text": text})
        sets[r["id"]] = ids
    splits, labels = build_splits(tiny_bert, rows, out / "single")
    dd = load_from_disk(str(splits))
    features = dd["train"].features.copy()
    features["label"] = List(ClassLabel(names=NAMES))
    dd = dd.map(lambda r: {"label": sets[r["id"]]}, features=features)
    dd.save_to_disk(str(out / "splits"))
    return out / "splits", labels


def save_multilabel_model(tiny_bert: Path, out: Path, thresholds: dict[str, float] | None) -> Path:
    """A 3-label mean-pool head as finetune saves a multi-label one (stages/model/build.py's save_model);
    the head scaled so that the probabilities spread over (0, 1) (a random tiny head gives about 0.5)."""
    import torch
    from transformers import AutoTokenizer

    from stages.model.build import save_model
    from stages.serving.meanpool import MULTI_LABEL, MeanPoolForSequenceClassification

    torch.manual_seed(3)
    model = MeanPoolForSequenceClassification.from_body(
        str(tiny_bert),
        num_labels=3,
        id2label=dict(enumerate(NAMES)),
        label2id={n: i for i, n in enumerate(NAMES)},
    )
    model.config.problem_type = MULTI_LABEL  # type: ignore[assignment]  # transformers types it a Literal
    if thresholds is not None:
        model.config.ftpipe_thresholds = thresholds
    with torch.no_grad():
        model.classifier.weight.mul_(50.0)
        model.classifier.bias.copy_(torch.tensor([0.5, 0.0, -0.5]))
    save_model(model, AutoTokenizer.from_pretrained(tiny_bert), out, {})
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, corpus: list[dict]) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("evaluate-multilabel")
    splits, labels = label_set_splits(tiny_bert, corpus, tmp / "data")
    params = tmp / "params.yaml"
    params.write_text("tokenize: {}\nevaluate:\n  worst_errors: 3\n  excerpt_chars: 30\n")
    model = save_multilabel_model(tiny_bert, tmp / "model", THRESHOLDS)
    s = {"tmp": tmp, "splits": splits, "labels": labels, "model": model, "params": params}
    evaluate.main(argv(s, outputs(tmp)))
    return s


def sets(column: pd.Series) -> np.ndarray:
    return multi_hot([[NAMES.index(n) for n in split_set(s)] for s in column], len(NAMES))


def by_hand(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Subset accuracy, Hamming loss, micro- and macro-F1 counted from the indicator matrices."""
    tp, fp, fn = (
        ((y == 1) & (pred == 1)).sum(0),
        ((y == 0) & (pred == 1)).sum(0),
        ((y == 1) & (pred == 0)).sum(0),
    )
    per_label = [2 * t / (2 * t + p + n) if t else 0.0 for t, p, n in zip(tp, fp, fn, strict=True)]
    return {
        "accuracy": float((y == pred).all(axis=1).mean()),
        "hamming_loss": float((y != pred).mean()),
        "micro_f1": float(2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())),
        "macro_f1": float(np.mean(per_label)),
    }


def test_metrics_file_and_headline(setup: dict[str, Path]) -> None:
    out = outputs(setup["tmp"])
    m = json.loads(out["metrics"].read_text())
    assert m["primary_metric"] == "micro_f1" and m["task"] == "multi_label" and m["test_rows"] == 15
    assert set(m["model"]) == set(m["baseline"]) == BLOCK_KEYS
    assert m["model"]["thresholds"] == THRESHOLDS
    assert all(0.0 < t < 1.0 for t in m["baseline"]["thresholds"].values())
    assert set(m["model"]["per_class"]) == set(NAMES)
    assert set(m["delta"]) == {"accuracy", "micro_f1", "macro_f1", "weighted_f1"}
    for k, d in m["delta"].items():
        assert d == pytest.approx(m["model"][k] - m["baseline"][k])
    assert m["baseline"]["micro_f1"] >= 0.8  # the keyword corpus is easy for one-vs-rest TF-IDF
    head = json.loads(out["headline"].read_text())
    keys = ["accuracy", "micro_f1", "macro_f1", "hamming_loss", "ece"]
    assert head == {
        "test": {k: m["model"][k] for k in keys},
        "test_baseline": {k: m["baseline"][k] for k in keys},
        "test_delta": {k: m["delta"][k] for k in ("micro_f1", "macro_f1")},
        "test_rows": 15,
    }


def test_predictions_csv_gives_back_the_metrics(setup: dict[str, Path]) -> None:
    out = outputs(setup["tmp"])
    m = json.loads(out["metrics"].read_text())
    df = pd.read_csv(out["predictions"], dtype={"id": str})
    assert list(df.columns) == [
        *(
            "id",
            "label",
            "pred",
            "score",
            "correct",
            "f1",
            "baseline_pred",
            "baseline_correct",
            "baseline_f1",
        ),
        *(f"prob_{n}" for n in NAMES),
    ]
    y, pred, base = sets(df["label"]), sets(df["pred"]), sets(df["baseline_pred"])
    assert (y.sum(axis=1) >= 1).all() and (y.sum(axis=1) == 2).any()
    probs = df[[f"prob_{n}" for n in NAMES]].to_numpy()
    t = np.array([THRESHOLDS[n] for n in NAMES])
    passed = probs >= t
    assert (pred[passed.any(axis=1)] == passed[passed.any(axis=1)]).all()  # the thresholds decide
    fallback = ~passed.any(axis=1)  # none passes: the best probability / threshold ratio alone
    assert fallback.any() and (pred.sum(axis=1) >= 2).any()  # the head gives both cases
    assert (pred[fallback].argmax(axis=1) == (probs[fallback] / t).argmax(axis=1)).all()
    assert (pred[fallback].sum(axis=1) == 1).all() and (pred.sum(axis=1) >= 1).all()
    assert df["score"].to_numpy() == pytest.approx((probs * pred).sum(axis=1) / pred.sum(axis=1), abs=1e-6)
    for cols, block in (
        ((pred, "correct", "f1"), "model"),
        ((base, "baseline_correct", "baseline_f1"), "baseline"),
    ):
        got, correct, f1 = cols
        assert df[correct].tolist() == (got == y).all(axis=1).astype(int).tolist()
        hand_f1 = 2 * (got * y).sum(axis=1) / (got.sum(axis=1) + y.sum(axis=1))
        assert df[f1].to_numpy() == pytest.approx(hand_f1, abs=1e-6)
        assert {
            k: m[block][k] for k in ("accuracy", "hamming_loss", "micro_f1", "macro_f1")
        } == pytest.approx(by_hand(y, got))
        assert m[block]["label_cardinality"] == pytest.approx(got.sum(axis=1).mean())
    assert {n: c["support"] for n, c in m["model"]["per_class"].items()} == dict(
        zip(NAMES, y.sum(axis=0).tolist(), strict=True)
    )


def test_confusion_pairs_and_worst_errors(setup: dict[str, Path]) -> None:
    out = outputs(setup["tmp"])
    df = pd.read_csv(out["predictions"], dtype={"id": str})
    y, pred = sets(df["label"]), sets(df["pred"])
    conf = json.loads(out["confusion"].read_text())
    assert len(conf) == int((y | pred).sum())  # one record per (text, label in either set)
    assert sum(c["actual"] == c["predicted"] for c in conf) == int((y & pred).sum())
    assert {c["actual"] for c in conf} | {c["predicted"] for c in conf} <= {*NAMES, "(none)"}
    assert out["confusion-png"].read_bytes()[:4] == b"\x89PNG"
    errors = pd.read_csv(out["errors"], dtype={"id": str})
    wrong = df[df["correct"] == 0]
    assert len(errors) == min(3, len(wrong))
    assert list(errors.columns) == ["id", "label", "pred", "score", "f1", "text"]
    assert errors["f1"].tolist() == sorted(wrong["f1"])[: len(errors)]
    assert (errors["label"] != errors["pred"]).all() and errors["text"].str.len().max() <= 34


def test_model_without_thresholds_says_rerun_finetune(
    setup: dict[str, Path], tiny_bert: Path, tmp_path: Path
) -> None:
    model = save_multilabel_model(tiny_bert, tmp_path / "model", None)
    with pytest.raises(EvaluateError, match=r"`ftpipe_thresholds`.*Rerun `dvc repro finetune`"):
        evaluate.main(argv({**setup, "model": model}, outputs(tmp_path)))
    assert not (tmp_path / "reports" / "metrics.json").exists()


def test_single_label_model_on_label_sets_is_refused(setup: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(setup["model"], model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["problem_type"] = "single_label_classification"
    (model / "config.json").write_text(json.dumps(cfg))
    write_folder_manifest(model)
    with pytest.raises(EvaluateError, match="single-label head but the splits hold label sets"):
        evaluate.main(argv({**setup, "model": model}, outputs(tmp_path)))
