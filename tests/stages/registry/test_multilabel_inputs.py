"""The register stage's side of label sets: a multi-label candidate read from evaluate's files, the
signature of its served model, its card (thresholds), and its stale inputs refused."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

from stages.config.register import GateParams
from stages.core.label_sets import MULTI_LABEL_TASK
from stages.gate.checks import Decision, run_gate
from stages.registry.card import gather_provenance, model_card
from stages.registry.client import Registration, served_signature
from stages.registry.inputs import RegisterError, load_candidate
from stages.registry.regate import recorded_candidate, with_texts

NAMES = ["sport", "tech", "world"]
SETS = [[0], [1, 2], [0, 1], [2]]


def splits(sets: list[list[int]]) -> DatasetDict:
    features = Features(
        {"id": Value("string"), "text": Value("string"), "label": List(ClassLabel(names=NAMES))}
    )

    def part(rows: list[list[int]], prefix: str) -> Dataset:
        ids = [f"{prefix}{i}" for i in range(len(rows))]
        return Dataset.from_dict({"id": ids, "text": [f"text {i}" for i in ids], "label": rows}, features)

    return DatasetDict({"train": part(sets, "tr"), "validation": part(sets, "va"), "test": part(sets, "te")})


def write_inputs(root: Path, task: str | None = MULTI_LABEL_TASK) -> dict[str, Path]:
    model = root / "model"
    model.mkdir()
    config = {
        "id2label": {str(i): n for i, n in enumerate(NAMES)},
        "problem_type": "multi_label_classification",
        "ftpipe_thresholds": {"sport": 0.35, "tech": 0.5, "world": 0.65},
    }
    (model / "config.json").write_text(json.dumps(config))
    labels = root / "labels.json"
    labels.write_text(json.dumps({str(i): n for i, n in enumerate(NAMES)}))
    block = {"accuracy": 0.5, "subset_accuracy": 0.5, "micro_f1": 0.8, "macro_f1": 0.75, "hamming_loss": 0.1}
    metrics = {"primary_metric": "micro_f1", "model": block, "baseline": {**block, "micro_f1": 0.6}}
    if task is not None:
        metrics["task"] = task
    (root / "metrics.json").write_text(json.dumps(metrics))
    truth = ["sport", "tech|world", "sport|tech", "world"]
    pd.DataFrame(
        {
            "id": [f"te{i}" for i in range(4)],
            "label": truth,
            "pred": ["sport", "tech", "sport|tech", "sport|world"],
            "score": [0.9, 0.8, 0.7, 0.6],
            "correct": [1, 0, 1, 0],
            "f1": [1.0, 2 / 3, 1.0, 2 / 3],
            "baseline_pred": ["sport", "tech|world", "tech", "world"],
            "baseline_correct": [1, 1, 0, 1],
            "baseline_f1": [1.0, 1.0, 2 / 3, 1.0],
        }
    ).to_csv(root / "predictions.csv", index=False)
    return {"model": model, "metrics": root / "metrics.json", "predictions": root / "predictions.csv"} | {
        "labels": labels
    }


def test_a_multi_label_candidate_holds_set_strings(tmp_path: Path) -> None:
    f = write_inputs(tmp_path)
    cand = load_candidate(f["model"], f["metrics"], f["predictions"], splits(SETS), f["labels"])
    assert cand.task == MULTI_LABEL_TASK and cand.primary_metric == "micro_f1" and cand.labels == NAMES
    # the split's id lists become names in id order, joined by "|"
    assert cand.test["label"].tolist() == ["sport", "tech|world", "sport|tech", "world"]
    assert cand.test["pred"].tolist() == ["sport", "tech", "sport|tech", "sport|world"]
    assert cand.test["baseline_pred"].tolist() == ["sport", "tech|world", "tech", "world"]
    assert cand.test["correct"].tolist() == [1, 0, 1, 0]


def test_metrics_of_another_task_are_stale(tmp_path: Path) -> None:
    f = write_inputs(tmp_path, task=None)
    old = json.loads(f["metrics"].read_text())
    f["metrics"].write_text(json.dumps({**old, "primary_metric": "macro_f1"}))  # a single-label file
    with pytest.raises(RegisterError, match="says task single_label, the test split holds label sets"):
        load_candidate(f["model"], f["metrics"], f["predictions"], splits(SETS), f["labels"])


def test_the_signature_declares_a_probability_per_label_for_label_sets(tmp_path: Path) -> None:
    def registration(label_sets: bool) -> Registration:
        return Registration(
            "r", {}, {}, {}, [], [], lambda _: "", None, None, tmp_path, {}, [], 300, label_sets, NAMES
        )

    multi = served_signature(registration(True))
    assert multi.outputs is not None and multi.outputs.input_names() == [
        "label",
        "score",
        "p_sport",
        "p_tech",
        "p_world",
    ]
    assert {str(t) for t in multi.outputs.input_types()[2:]} == {"DataType.double"}
    single = served_signature(registration(False))
    assert single.outputs is not None and single.outputs.input_names() == ["label", "score"]
    assert single.params is not None and single.params.to_dict() == multi.params.to_dict()


def test_the_card_shows_each_labels_threshold_and_the_set_metrics(tmp_path: Path) -> None:
    f = write_inputs(tmp_path)
    cand = load_candidate(f["model"], f["metrics"], f["predictions"], splits(SETS), f["labels"])
    prov = gather_provenance({}, tmp_path / "dvc.lock", f["model"])
    assert prov.thresholds == {"sport": 0.35, "tech": 0.5, "world": 0.65}
    trunc = {"max_length": 64, "truncation": "head", "head_fraction": 0.25, "windows": 1}
    card = model_card("m", cand, Decision(True, [], None), {}, "run1", trunc, provenance=prov)
    assert "## Decision thresholds" in card and "config.json `ftpipe_thresholds`" in card
    assert "| sport | 0.3500 |" in card and "| world | 0.6500 |" in card
    assert "| micro_f1 | 0.8000 | 0.6000 |" in card and "| hamming_loss |" in card
    assert "Test split: 4 examples (sport 2, tech 2, world 2)" in card
    assert "one or more of 3 labels" in card


class RecordedRegistry:
    """What `recorded_candidate` reads of a registry: a version's run and labels tag, the run's reports."""

    def __init__(self, reports: dict[str, bytes]) -> None:
        self.reports = reports

    def version(self, version: str) -> SimpleNamespace:
        return SimpleNamespace(run_id="run1", version=version, tags={"labels": json.dumps(NAMES)})

    def artifact(self, run_id: str, path: str) -> bytes:
        return self.reports[path.rsplit("/", 1)[-1]]


def test_regate_reads_a_multi_label_version_back_as_label_sets(tmp_path: Path) -> None:
    f = write_inputs(tmp_path)
    reg = RecordedRegistry({n: (tmp_path / n).read_bytes() for n in ("metrics.json", "predictions.csv")})
    cand = recorded_candidate(reg, "2")  # type: ignore[arg-type]
    assert cand.task == MULTI_LABEL_TASK and cand.test["label"].tolist()[1] == "tech|world"
    splits(SETS).save_to_disk(str(tmp_path / "splits"))
    cand = with_texts(cand, tmp_path / "splits", "2")
    assert cand.task == MULTI_LABEL_TASK and cand.test["text"].tolist()[0] == "text te0"
    # judged again with no champion: the bootstrap against the baseline's sets
    check = {c.name: c for c in run_gate(GateParams(), cand, None).checks}["baseline_significance"]
    assert "paired bootstrap" in check.reason and f["metrics"].is_file()
