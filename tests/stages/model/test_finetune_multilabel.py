"""finetune on label sets (`label.task: multi_label`): a sigmoid head trained with binary cross-entropy,
per-label thresholds tuned on validation and saved with the model, balanced positive weights recorded.

The tiny corpus's splits are given label sets: every text keeps its topic, and every third text of the
train and validation splits is also tagged `news` (a label that is on some texts and off others)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from datasets import ClassLabel, DatasetDict, List, load_from_disk

from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.model.multilabel import multi_hot
from stages.model.recipe import Paths, run_finetune
from stages.model.trainer import FinetuneError
from stages.model.training import positive_weights
from stages.serving.meanpool import MULTI_LABEL, load_classifier
from tests.conftest import build_splits

LOG = logging.getLogger("ftpipe.finetune")
TINY = {"epochs": 2, "learning_rate": 5e-3, "batch_size": 4, "warmup": 0.0, "precision": "fp32"}
NAMES = ["business", "news", "sport", "tech"]


@pytest.fixture(scope="module")
def set_data(
    tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, corpus: list[dict]
) -> tuple[Path, Path]:
    """build_splits' splits and labels.json, the label a list of class ids of NAMES."""
    root = tmp_path_factory.mktemp("set-data")
    splits, _ = build_splits(tiny_bert, corpus, root / "one")
    dd = cast(DatasetDict, load_from_disk(str(splits)))
    old = dd["train"].features["label"].names

    def to_set(row: dict[str, Any], i: int) -> dict[str, Any]:
        ids = {NAMES.index(old[row["label"]])} | ({NAMES.index("news")} if i % 3 == 0 else set())
        return {"label": sorted(ids)}

    features = dd["train"].features.copy()
    features["label"] = List(ClassLabel(names=NAMES))
    out = DatasetDict({k: v.map(to_set, with_indices=True, features=features) for k, v in dd.items()})
    out.save_to_disk(str(root / "splits"))
    (root / "labels.json").write_text(json.dumps(dict(enumerate(NAMES))))
    return root / "splits", root / "labels.json"


def paths(tmp: Path, data: tuple[Path, Path]) -> Paths:
    names = ("model", "ckpt", "finetune.json", "history.json", "curves.png")
    return Paths(data[0], data[1], *(tmp / n for n in names))


def train(tmp: Path, model: Path, data: tuple[Path, Path], **overrides: Any) -> dict[str, Any]:
    report = run_finetune(
        FinetuneParams(**{**TINY, **overrides}), BaseModelRef(model=str(model)), paths(tmp, data), LOG
    )
    assert report is not None
    return report


def test_label_sets_train_a_sigmoid_head_with_thresholds_saved_beside_it(
    tmp_path: Path, tiny_bert: Path, set_data: tuple[Path, Path]
) -> None:
    report = train(tmp_path, tiny_bert, set_data, class_weights="balanced", metric="micro_f1")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["problem_type"] == MULTI_LABEL
    thresholds = config["ftpipe_thresholds"]
    assert list(thresholds) == NAMES and all(0 < t < 1 for t in thresholds.values())
    assert report["task"] == "multi_label" and report["thresholds"] == thresholds
    assert report["best_metric"] == "micro_f1"
    assert {"micro_f1", "hamming_loss", "accuracy", "macro_f1"} <= set(report["best_validation"])
    train_rows = load_from_disk(str(set_data[0]))["train"]
    expected = positive_weights(multi_hot(train_rows["label"], len(NAMES)))
    assert list(report["positive_weights"].values()) == pytest.approx(expected.tolist(), abs=1e-6)
    assert "class_weights" not in report  # per label, under its own name
    resolved = json.loads((tmp_path / "model" / "ftpipe_params.json").read_text())
    assert resolved["task"] == "multi_label" and resolved["thresholds"] == thresholds
    # the saved model gives each label its own probability: rows need not sum to 1
    model = load_classifier(str(tmp_path / "model")).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([train_rows[0]["input_ids"]])).logits
    assert logits.shape == (1, len(NAMES))
    history = json.loads((tmp_path / "history.json").read_text())
    assert all(np.isfinite(r["val_loss"]) and 0 <= r["val_hamming_loss"] <= 1 for r in history)


def test_micro_f1_is_refused_for_one_label_per_text(
    tmp_path: Path, tiny_bert: Path, corpus: list[dict]
) -> None:
    data = build_splits(tiny_bert, corpus[:60], tmp_path / "data")
    with pytest.raises(FinetuneError, match="finetune.metric micro_f1 is for label sets"):
        train(tmp_path, tiny_bert, data, metric="micro_f1")


def test_the_head_starts_at_each_labels_log_odds(tiny_bert: Path) -> None:
    import math

    from stages.model.build import load_model_and_tokenizer, set_head_bias
    from stages.model.training import prior_bias

    hot = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]])
    # label 0 on 1 of 4 rows: log(1/3); label 1 on none: clipped to 1/5, log(1/4); label 2 on all: log(4)
    assert prior_bias(hot).tolist() == pytest.approx([math.log(1 / 3), math.log(1 / 4), math.log(4)])
    # balanced positive weights (negatives / positives) make every label's weighted odds 1: bias 0
    assert prior_bias(hot[:, :1], np.array([3.0])).tolist() == pytest.approx([0.0])
    model, _ = load_model_and_tokenizer(
        BaseModelRef(model=str(tiny_bert)), ["a", "b", "c"], "none", "mean", True
    )
    assert set_head_bias(model, prior_bias(hot))
    head = cast(Any, model).classifier
    assert head.bias.tolist() == pytest.approx(prior_bias(hot).tolist(), rel=1e-6)
