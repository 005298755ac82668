"""Gradient accumulation trains what one larger batch trains: FinetuneTrainer's loss scaling.

transformers' `Trainer` assumes a model whose `forward` takes `**kwargs` normalises its loss by
`num_items_in_batch`; it then skips dividing by `gradient_accumulation_steps` (and multiplies by the number of
processes). The heads trained here return their batch's mean and ignore that count, so `FinetuneTrainer` sets
`model_accepts_loss_kwargs = False`. Without it an accumulated run logs (and back-propagates) N times the loss.

The base model has no dropout, so 2 accumulated batches of 2 and one batch of 4 see the same numbers and differ
only in the order of floating-point sums (and in padding, which the attention mask hides).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.model.recipe import Paths, run_finetune
from tests.conftest import build_splits, relative_diff
from tests.conftest import model_weights as weights

# 60 train rows (build_splits keeps 4 of every 6 of 90): 15 optimizer steps an epoch at an effective batch of 4
SHARED = {
    "epochs": 2,
    "learning_rate": 5e-3,
    "warmup": 0.0,
    "patience": 0,
    "precision": "fp32",
    "pooling": "native",  # BertForSequenceClassification: its forward takes **kwargs, dropout here none
}
ACCUMULATED = {**SHARED, "batch_size": 2, "gradient_accumulation_steps": 2}
ONE_BATCH = {**SHARED, "batch_size": 4}
WEIGHTS_TOL = 1e-3  # relative L2 norm of the difference of the final weights
TRAIN_LOSS_TOL = 1e-4  # relative, per epoch


def train(root: Path, model: Path, data: tuple[Path, Path], params: dict[str, object]) -> Path:
    run = root / "run"
    paths = Paths(*data, *(run / n for n in ("model", "ckpt", "finetune.json", "history.json", "curves.png")))
    run_finetune(FinetuneParams(**params), BaseModelRef(model=str(model)), paths, logging.getLogger())
    return run


def train_losses(run: Path) -> list[float]:
    return [float(r["train_loss"]) for r in json.loads((run / "history.json").read_text())]


def test_accumulated_batches_train_like_one_batch_of_their_size(
    tmp_path_factory: pytest.TempPathFactory, no_dropout_bert: Path, corpus: list[dict[str, str]]
) -> None:
    data = build_splits(no_dropout_bert, corpus, tmp_path_factory.mktemp("data"), max_length=16)
    one = train(tmp_path_factory.mktemp("one-batch"), no_dropout_bert, data, ONE_BATCH)
    acc = train(tmp_path_factory.mktemp("accumulated"), no_dropout_bert, data, ACCUMULATED)
    a, b = train_losses(one), train_losses(acc)
    assert len(a) == len(b) == SHARED["epochs"]
    gaps = {
        "train_loss": max(abs(x - y) / x for x, y in zip(a, b, strict=True)),
        "weights": relative_diff(weights(one), weights(acc)),
    }
    # with the Trainer's scaling left on, the accumulated run logs twice the loss: gap 1.0
    assert gaps["train_loss"] <= TRAIN_LOSS_TOL, (gaps, a, b)
    assert gaps["weights"] < WEIGHTS_TOL, (gaps, a, b)
