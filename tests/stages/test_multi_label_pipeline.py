"""Smoke run of the DAG on label sets (`label.task: multi_label`): `dvc repro drift`, then the rest.

A temporary git + DVC repo (the real dvc.yaml, a copy of `stages/`) reads a JSONL file whose `tags`
cells are lists: texts about business, sport or tech, a third of them also about a second topic (their
words mixed in, both labels in the set), a rare label on three texts, an empty set and a copy of a text
with another set. The rest of the DAG then trains a multi-label head, evaluates it and registers it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from datasets import ClassLabel, List, load_from_disk

from tests.conftest import TOPICS, make_corpus, make_pipeline_repo, run_cmd


def multi_label_rows(n_per_class: int = 40) -> list[dict[str, object]]:
    """make_corpus's texts, a third of them given a second topic's words and label."""
    rng = random.Random(1)
    rows: list[dict[str, object]] = []
    for i, r in enumerate(make_corpus(n_per_class=n_per_class)):
        tags = [r["label"].capitalize()]  # folded to lower case by label.lowercase
        text = r["text"]
        if i % 3 == 0:
            other = sorted(set(TOPICS) - {r["label"]})[i % 2]
            text += " Also " + " ".join(rng.choice(TOPICS[other].split()) for _ in range(6)) + "."
            tags.append(other)
        if i < 3:
            tags.append("weather")  # three rows: below label.min_class_rows, removed from the sets
        rows.append({"id": r["id"], "text": text, "tags": tags})
    rows.append({"id": "no-tags", "text": "A story about nothing in particular at all.", "tags": []})
    rows.append({"id": "only-rare", "text": "Rain and wind all week long in the north.", "tags": ["weather"]})
    rows.append({"id": "copy", "text": rows[5]["text"], "tags": ["business", "sport", "tech"]})
    return rows


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    root = make_pipeline_repo(
        tmp_path_factory.mktemp("multi-label"),
        {
            "ingest": {"source": "data/external/tagged.jsonl", "id_field": "id", "label_field": "tags"},
            "tokenize": {"model": str(tiny_bert), "max_length": 32, "windows": 1},
            "label": {"task": "multi_label"},
            "validate": {"min_rows_per_split": 2},
            "finetune": {"epochs": 1},
        },
    )
    lines = [json.dumps(r) for r in multi_label_rows()]
    (root / "data" / "external" / "tagged.jsonl").write_text("\n".join(lines) + "\n")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    run_cmd(["dvc", "repro", "drift"], root, env=env, timeout=900)
    return root


def read(repo: Path, rel: str) -> dict:
    return json.loads((repo / rel).read_text())


def test_ingest_and_clean_carry_label_sets(repo: Path) -> None:
    rejects = [json.loads(x) for x in (repo / "data/raw/rejects.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejects] == ["empty label set in `tags`"]
    clean = read(repo, "reports/clean.json")
    assert clean["reject_reasons"] == {"conflicting_labels": 2}  # row 5 and its copy with another set
    assert clean["labels"]["weather"] == 4


def test_label_writes_class_id_lists(repo: Path) -> None:
    assert read(repo, "data/processed/labels.json") == {"0": "business", "1": "sport", "2": "tech"}
    dd = load_from_disk(str(repo / "data/processed/splits"))
    feature = dd["train"].features["label"]
    assert isinstance(feature, List) and isinstance(feature.feature, ClassLabel)
    assert feature.feature.names == ["business", "sport", "tech"]
    sets = [s for split in dd.values() for s in split["label"]]
    assert all(s == sorted(set(s)) and s for s in sets) and sum(len(s) == 2 for s in sets) > 20
    report = read(repo, "reports/label.json")
    assert report["removed_labels"] == {
        "weather": {"rows": 4, "reason": "has 4 rows < label.min_class_rows 10"}
    }
    quarantine = [json.loads(x) for x in (repo / "reports/label_quarantine.jsonl").read_text().splitlines()]
    assert [(q["id"], q["label"]) for q in quarantine] == [("only-rare", ["weather"])]


def test_validate_and_drift_profile_label_sets(repo: Path) -> None:
    profile = read(repo, "data/processed/profile.json")
    card = profile["label_sets"]["cardinality"]["train"]
    assert 1.0 < card["mean"] < 2.0 and card["max"] == 2 and set(card["hist"]) == {"1", "2"}
    assert {tuple(p["labels"]) for p in profile["label_sets"]["top_pairs"]} <= {
        ("business", "sport"),
        ("business", "tech"),
        ("sport", "tech"),
    }
    full = read(repo, "reports/data_profile.json")
    assert full["headline"]["passed"] and full["headline"]["label_cardinality"] == card["mean"]
    assert read(repo, "reports/drift.json")["outcome"] == "skip"  # no champion to compare with


def test_the_model_side_trains_evaluates_registers_and_predicts_label_sets(repo: Path) -> None:
    """The rest of the DAG on the same label sets: a sigmoid head with tuned thresholds, micro-F1 as the
    primary metric beside a one-vs-rest baseline, a registered version of the task whose served answer
    is a set."""
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{repo / 'mlflow.db'}"}
    run_cmd(["dvc", "repro"], repo, env=env, timeout=900)
    config = read(repo, "models/model/config.json")
    assert config["problem_type"] == "multi_label_classification"
    assert list(config["ftpipe_thresholds"]) == ["business", "sport", "tech"]
    metrics = read(repo, "reports/metrics.json")
    assert metrics["primary_metric"] == "micro_f1" and metrics["task"] == "multi_label"
    assert {"micro_f1", "hamming_loss", "subset_accuracy"} <= set(metrics["model"]) & set(metrics["baseline"])
    assert metrics["model"]["thresholds"] == config["ftpipe_thresholds"]
    report = read(repo, "reports/registry.json")
    assert report["action"] == "registered" and report["version"] == "1"
    gate = {c["name"]: c for c in report["gate"]["checks"]}
    # the first version against the one-vs-rest baseline: the paired bootstrap of micro-F1, not McNemar
    assert "one-sided p" in gate["baseline_significance"]["reason"]
    assert gate["baseline"]["reason"].startswith("micro_f1 ")
    import mlflow.pyfunc
    import pandas as pd

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    model = mlflow.pyfunc.load_model(f"models:/{report['name']}/1")
    out = model.predict(
        pd.DataFrame({"text": ["Shares rose as profits beat forecasts; the striker scored."]})
    )
    assert set(out["label"][0].split("|")) <= {"business", "sport", "tech"}
    assert [c for c in out.columns if c.startswith("p_")] == ["p_business", "p_sport", "p_tech"]
