"""The served answer of a multi-label model: a label set per text as one "|"-joined string, chosen by the
per-label thresholds of config.json, its mean probability as the score, and every label's probability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages.serving.textclf import TextClassifier, choose_labels, label_sets, label_thresholds
from tests.stages.serving.multilabel_support import (
    NAMES,
    TEXTS,
    THRESHOLDS,
    build_multilabel_model,
    load_served,
)

PROBS = [f"p_{n}" for n in NAMES]


@pytest.fixture(scope="module")
def folder(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_multilabel_model(tiny_bert, tmp_path_factory.mktemp("tiny-multilabel"))


@pytest.fixture(scope="module")
def served(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> TextClassifier:
    return load_served(folder, tmp_path_factory.mktemp("served-multilabel"))


def test_labels_at_or_over_their_threshold_are_chosen_else_the_best_ratio() -> None:
    probs = np.array([[0.7, 0.5, 0.1], [0.3, 0.2, 0.1], [0.1, 0.1, 0.1], [0.2, 0.6, 0.9]])
    thresholds = np.array([0.6, 0.25, 0.5])
    assert choose_labels(probs, thresholds).tolist() == [
        [1, 1, 0],  # two pass
        [0, 1, 0],  # none passes: 0.2 / 0.25 beats 0.3 / 0.6 (the highest probability is not the pick)
        [0, 1, 0],  # none passes: the best ratio
        [0, 1, 1],  # 0.6 >= 0.25 and 0.9 >= 0.5
    ]
    out = label_sets(probs, ["a", "b", "c"], thresholds)
    assert out["label"].tolist() == ["a|b", "b", "b", "b|c"]
    np.testing.assert_allclose(out["score"], [0.6, 0.2, 0.1, 0.75])
    assert list(out.columns) == ["label", "score", "p_a", "p_b", "p_c"]
    assert label_sets(np.zeros((0, 3)), ["a", "b", "c"], thresholds).shape == (0, 5)


def test_the_served_rule_is_evaluates_rule() -> None:
    """evaluate decides with stages/model/multilabel.py `decide`; the served model repeats it (textclf.py
    stands alone), so both must give the same sets, ties and empty rows included."""
    from stages.model import multilabel

    rng = np.random.default_rng(0)
    probs = np.round(rng.random((400, 5)), 2)  # rounded: ties with the thresholds and between ratios
    probs[:50] *= 0.3  # rows where no label passes
    thresholds = np.array([0.2, 0.5, 0.5, 0.7, 0.35])
    np.testing.assert_array_equal(choose_labels(probs, thresholds), multilabel.decide(probs, thresholds))


def test_thresholds_come_from_the_config_and_default_to_one_half() -> None:
    class Config:
        ftpipe_thresholds = {"b": 0.3, "a": 0.7}

    assert label_thresholds(Config(), ["a", "b", "c"]).tolist() == [0.7, 0.3, 0.5]
    assert label_thresholds(object(), ["a", "b"]).tolist() == [0.5, 0.5]


def _expected(out: pd.DataFrame, thresholds: dict[str, float]) -> tuple[list[str], list[float]]:
    probs = out[PROBS].to_numpy()
    chosen = choose_labels(probs, np.array([thresholds[n] for n in NAMES]))
    labels = ["|".join(n for n, c in zip(NAMES, row, strict=True) if c) for row in chosen]
    return labels, [float(probs[i][row == 1].mean()) for i, row in enumerate(chosen)]


def test_a_multi_label_model_answers_sets_and_every_probability(served: TextClassifier) -> None:
    frame = pd.DataFrame({"text": TEXTS})
    out = served.predict(None, frame)  # type: ignore[arg-type]
    assert list(out.columns) == ["label", "score", *PROBS]  # the probabilities without asking
    pd.testing.assert_frame_equal(out, served.predict(None, frame, {"probabilities": True}))  # type: ignore[arg-type]
    probs = out[PROBS].to_numpy()
    assert ((probs > 0) & (probs < 1)).all() and not np.allclose(probs.sum(axis=1), 1.0)  # sigmoids
    labels, scores = _expected(out, THRESHOLDS)
    assert out["label"].tolist() == labels
    np.testing.assert_allclose(out["score"], scores)
    assert any("|" in lbl for lbl in labels) and any("|" not in lbl for lbl in labels), labels


def test_a_model_saved_without_thresholds_decides_at_one_half(
    tiny_bert: Path, tmp_path: Path, served: TextClassifier
) -> None:
    bare = build_multilabel_model(tiny_bert, tmp_path / "bare", thresholds={})
    out = load_served(bare, tmp_path / "served").predict(None, pd.DataFrame({"text": TEXTS}))  # type: ignore[arg-type]
    labels, _ = _expected(out, dict.fromkeys(NAMES, 0.5))
    assert out["label"].tolist() == labels
    np.testing.assert_allclose(out[PROBS], served.predict(None, pd.DataFrame({"text": TEXTS}))[PROBS])  # type: ignore[arg-type]
