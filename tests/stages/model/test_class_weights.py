"""`finetune.class_weights: balanced`: sklearn's weights from the train labels, and the weighted loss.

The loss is checked against a weighted cross-entropy computed by hand (log-softmax in plain Python) on a
batch of three rows, so a change of reduction (sum, or a mean over rows instead of over weights) shows.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
import torch

from stages.config.finetune import FinetuneParams
from stages.model.trainer import FinetuneTrainer
from stages.model.training import balanced_class_weights

LOGITS = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-0.5, 1.5, 0.0]]
LABELS = [0, 2, 2]
WEIGHTS = [0.5, 3.0, 2.0]


class FixedHead(torch.nn.Module):
    """Returns the same logits whatever the input; complains if handed the labels (the loss is ours)."""

    def forward(self, input_ids: torch.Tensor, **kw: Any) -> dict[str, torch.Tensor]:
        assert "labels" not in kw
        return {"logits": torch.tensor(LOGITS)}


def hand_weighted_ce(logits: list[list[float]], labels: list[int], weights: list[float]) -> float:
    """sum_i w[y_i] * -log softmax(z_i)[y_i] / sum_i w[y_i]: torch's weighted mean, written out."""
    num = den = 0.0
    for z, y in zip(logits, labels, strict=True):
        log_p = z[y] - math.log(sum(math.exp(v) for v in z))
        num += weights[y] * -log_p
        den += weights[y]
    return num / den


def loss_of(class_weights: torch.Tensor | None) -> torch.Tensor:
    """`FinetuneTrainer.compute_loss` on the fixed batch, without building a whole Trainer."""
    trainer = cast(FinetuneTrainer, SimpleNamespace(class_weights=class_weights, multi_label=False))
    inputs = {"input_ids": torch.zeros(3, 4, dtype=torch.long), "labels": torch.tensor(LABELS)}
    return cast(torch.Tensor, FinetuneTrainer.compute_loss(trainer, FixedHead(), inputs))


def test_weighted_loss_equals_a_hand_computed_weighted_cross_entropy() -> None:
    got = float(loss_of(torch.tensor(WEIGHTS)))
    assert got == pytest.approx(hand_weighted_ce(LOGITS, LABELS, WEIGHTS), rel=1e-6)
    # and it is not the plain mean: the weights change the figure
    assert got != pytest.approx(hand_weighted_ce(LOGITS, LABELS, [1.0, 1.0, 1.0]), rel=1e-3)


def test_returns_the_outputs_for_the_prediction_step() -> None:
    trainer = cast(FinetuneTrainer, SimpleNamespace(class_weights=torch.tensor(WEIGHTS), multi_label=False))
    inputs = {"input_ids": torch.zeros(3, 4, dtype=torch.long), "labels": torch.tensor(LABELS)}
    loss, out = FinetuneTrainer.compute_loss(trainer, FixedHead(), inputs, return_outputs=True)
    assert "loss" not in out and out["logits"].shape == (3, 3)
    assert float(loss) == pytest.approx(hand_weighted_ce(LOGITS, LABELS, WEIGHTS), rel=1e-6)


def test_balanced_weights_are_sklearns_and_an_absent_class_gets_one() -> None:
    y = np.array([0] * 8 + [1] * 2)  # class 2 absent
    w = balanced_class_weights(y, 3)
    # n_rows / (n_present_classes x rows of the class): 10 / (2 x 8), 10 / (2 x 2)
    assert w.tolist() == pytest.approx([10 / 16, 10 / 4, 1.0])
    assert balanced_class_weights(np.array([0, 1, 2, 0, 1, 2]), 3).tolist() == [1.0, 1.0, 1.0]


def test_class_weights_are_validated_and_left_out_of_the_record_when_none() -> None:
    assert "class_weights" not in FinetuneParams().record()
    assert FinetuneParams(class_weights="balanced").record()["class_weights"] == "balanced"
    with pytest.raises(ValueError, match="class_weights"):
        FinetuneParams(class_weights="inverse")


def test_label_sets_weigh_each_labels_positives_in_binary_cross_entropy() -> None:
    """Label sets: the mean over (row, label) of -(w_j y log s(z) + (1 - y) log(1 - s(z))), by hand."""
    hot = [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    trainer = cast(FinetuneTrainer, SimpleNamespace(class_weights=torch.tensor(WEIGHTS), multi_label=True))
    inputs = {"input_ids": torch.zeros(3, 4, dtype=torch.long), "labels": torch.tensor(hot)}
    got = float(cast(torch.Tensor, FinetuneTrainer.compute_loss(trainer, FixedHead(), inputs)))

    def s(z: float) -> float:
        return 1 / (1 + math.exp(-z))

    terms = [
        -(WEIGHTS[j] * y * math.log(s(z)) + (1 - y) * math.log(1 - s(z)))
        for zs, ys in zip(LOGITS, hot, strict=True)
        for j, (z, y) in enumerate(zip(zs, ys, strict=True))
    ]
    assert got == pytest.approx(sum(terms) / len(terms), rel=1e-6)


def test_positive_weights_are_negatives_over_positives_per_label() -> None:
    from stages.model.training import positive_weights

    hot = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 1], [1, 0, 1]])
    # label 0: 2 negatives / 2 positives; label 1: no positive -> 1.0; label 2: on every row -> 1.0
    assert positive_weights(hot).tolist() == [1.0, 1.0, 1.0]
    assert positive_weights(np.array([[1, 1], [0, 1], [0, 0], [0, 1]])).tolist() == [3.0, 1 / 3]
