"""evaluate's label-set helpers (stages/model/evaluation.py, stages/model/predictions.py) on small inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages.config.evaluate import EvaluateParams
from stages.model.evaluation import (
    EvaluateError,
    baseline_multilabel_proba,
    build_metrics,
    build_multilabel_metrics,
    check_model_task,
    headline_metrics,
    model_thresholds,
)
from stages.model.predictions import (
    NO_LABEL,
    multilabel_confusion_records,
    multilabel_predictions_table,
    multilabel_worst_errors,
    plot_multilabel_confusion,
)
from stages.reports.evaluate import MetricsReport

NAMES = ["a", "b", "c"]
MULTI = {"problem_type": "multi_label_classification", "ftpipe_thresholds": {"a": 0.4, "b": 0.5, "c": 0.6}}


def test_model_thresholds_in_id_order() -> None:
    cfg = {**MULTI, "ftpipe_thresholds": {"c": 0.6, "a": 0.4, "b": 0.5}}
    assert model_thresholds(cfg, NAMES, Path("m")).tolist() == [0.4, 0.5, 0.6]


@pytest.mark.parametrize(
    "saved",
    [None, {"a": 0.4, "b": 0.5}, {"a": 0.4, "b": 0.5, "c": 0.6, "d": 0.5}],
    ids=["missing", "one-short", "one-extra"],
)
def test_missing_or_partial_thresholds_say_rerun_finetune(saved: dict[str, float] | None) -> None:
    with pytest.raises(EvaluateError, match=r"m/config.json: `ftpipe_thresholds`.*dvc repro finetune"):
        model_thresholds({"ftpipe_thresholds": saved}, NAMES, Path("m"))


def test_threshold_outside_zero_one_is_refused() -> None:
    with pytest.raises(EvaluateError, match=r"in \(0, 1\)"):
        model_thresholds({"ftpipe_thresholds": {"a": 0.4, "b": 1.0, "c": 0.6}}, NAMES, Path("m"))


def test_head_and_splits_must_agree() -> None:
    assert check_model_task(MULTI, True, Path("m")) is True
    assert check_model_task({"problem_type": "single_label_classification"}, False, Path("m")) is False
    assert check_model_task({}, False, Path("m")) is False  # an older config without problem_type
    with pytest.raises(EvaluateError, match="single-label head but the splits hold label sets"):
        check_model_task({}, True, Path("m"))
    with pytest.raises(EvaluateError, match="multi-label head but the splits hold one class per text"):
        check_model_task(MULTI, False, Path("m"))


def test_one_vs_rest_baseline_learns_each_label_and_keeps_constant_ones() -> None:
    # label a: texts with "apple"; b: with "berry"; c: every train text carries it (one class: constant 1.0)
    train = ["apple pie", "apple tart", "berry jam", "berry tea", "apple berry mix", "plain bread"] * 3
    y = np.array([[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1]] * 3)
    p = EvaluateParams(baseline_min_df=1)
    val, test = baseline_multilabel_proba(train, y, [["apple cake"], ["berry cake", "bread"]], p)
    assert val.shape == (1, 3) and test.shape == (2, 3)
    assert val[0, 0] > 0.5 > val[0, 1]
    assert test[0, 1] > 0.5 > test[0, 0] and test[1, 0] < 0.5 and test[1, 1] < 0.5
    assert (val[:, 2] == 1.0).all() and (test[:, 2] == 1.0).all()


def metrics_for_two_rows() -> dict:
    y = np.array([[1, 0, 1], [0, 1, 0]])
    model = (np.array([[0.9, 0.1, 0.7], [0.2, 0.8, 0.1]]), np.array([0.4, 0.5, 0.6]))  # both rows right
    base = (np.array([[0.9, 0.1, 0.2], [0.2, 0.8, 0.1]]), np.array([0.5, 0.5, 0.5]))  # misses c in row 0
    return build_multilabel_metrics(y, model, base, NAMES, 10, 12.3456, "cpu")


def test_multilabel_metrics_file_shape() -> None:
    m = metrics_for_two_rows()
    assert list(m) == ["primary_metric", "task", "model", "baseline", "delta", "inference", "test_rows"]
    assert m["primary_metric"] == "micro_f1" and m["task"] == "multi_label" and m["test_rows"] == 2
    assert m["model"]["thresholds"] == {"a": 0.4, "b": 0.5, "c": 0.6}
    assert m["model"]["micro_f1"] == 1.0 and m["model"]["accuracy"] == 1.0
    # baseline: TP 2, FN 1 -> micro-F1 4/5; subset accuracy 1/2; per label F1 1, 1, 0 -> macro 2/3,
    # and weighted 2/3 too (one text per label)
    assert m["baseline"]["micro_f1"] == pytest.approx(0.8) and m["baseline"]["accuracy"] == 0.5
    assert m["delta"] == pytest.approx(
        {"accuracy": 0.5, "micro_f1": 0.2, "macro_f1": 1 / 3, "weighted_f1": 1 / 3}
    )
    assert m["inference"] == {"examples_per_s": 12.346, "device": "cpu"}
    assert MetricsReport.model_validate(m).dump() == m  # the summary's reader takes it, every key kept


def test_multilabel_headline() -> None:
    m = metrics_for_two_rows()
    h = headline_metrics(m)
    keys = ["accuracy", "micro_f1", "macro_f1", "hamming_loss", "ece"]
    assert list(h["test"]) == list(h["test_baseline"]) == keys
    assert h["test_delta"] == {k: m["delta"][k] for k in ("micro_f1", "macro_f1")}
    assert h["test_rows"] == 2


def test_single_label_files_carry_no_task_key() -> None:
    y = np.array([0, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    m = build_metrics(y, probs, probs, ["x", "y"], 10, 1.0, "cpu")
    assert "task" not in m and "task" not in MetricsReport.model_validate(m).dump()
    assert set(headline_metrics(m)["test"]) == {"accuracy", "macro_f1", "ece"}


def table() -> pd.DataFrame:
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 0]])
    probs = np.array([[0.9, 0.2, 0.3], [0.1, 0.7, 0.5], [0.3, 0.6, 0.8]])
    pred = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1]])
    base = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 0]])
    return multilabel_predictions_table(["r0", "r1", "r2"], y, probs, pred, base, NAMES)


def test_predictions_table_by_hand() -> None:
    df = table()
    assert list(df.columns) == [
        "id",
        "label",
        "pred",
        "score",
        "correct",
        "f1",
        "baseline_pred",
        "baseline_correct",
        "baseline_f1",
        "prob_a",
        "prob_b",
        "prob_c",
    ]
    assert df["label"].tolist() == ["a|c", "b", "a"]
    assert df["pred"].tolist() == ["a", "b", "b|c"]
    assert df["score"].tolist() == pytest.approx([0.9, 0.7, 0.7])  # mean of the chosen labels' probabilities
    assert df["correct"].tolist() == [0, 1, 0]
    assert df["f1"].tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert df["baseline_pred"].tolist() == ["a|c", "b|c", "a"]
    assert df["baseline_correct"].tolist() == [1, 0, 1]
    assert df["baseline_f1"].tolist() == pytest.approx([1.0, 2 / 3, 1.0])
    assert df["prob_c"].tolist() == [0.3, 0.5, 0.8]


def test_confusion_records_one_per_text_and_label() -> None:
    records = multilabel_confusion_records(table(), NAMES)
    assert records == [
        {"actual": "a", "predicted": "a"},
        {"actual": "c", "predicted": NO_LABEL},  # r0: c missed
        {"actual": "b", "predicted": "b"},
        {"actual": "a", "predicted": NO_LABEL},  # r2: a missed, b and c predicted wrongly
        {"actual": NO_LABEL, "predicted": "b"},
        {"actual": NO_LABEL, "predicted": "c"},
    ]


def test_plot_takes_the_none_name(tmp_path: Path) -> None:
    path = tmp_path / "confusion.png"
    plot_multilabel_confusion(multilabel_confusion_records(table(), NAMES), NAMES, path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_worst_errors_lowest_f1_first() -> None:
    errors = multilabel_worst_errors(table(), ["first text", "second", "a third text here"], 5, 20)
    assert errors["id"].tolist() == ["r2", "r0"]  # F1 0, then 2/3; r1 is right
    assert list(errors.columns) == ["id", "label", "pred", "score", "f1", "text"]
    assert multilabel_worst_errors(table(), ["x", "y", "z"], 1, 20)["id"].tolist() == ["r2"]
    assert json.loads(errors.to_json(orient="records"))[0]["text"] == "a third text here"
