"""Smoke run of the data half of the DAG (ingest -> clean -> tokenize -> label) through `dvc repro`.

Runs in a temporary git + DVC repo holding a copy of `stages/`, the real `dvc.yaml`, a small CSV under
data/external/ and a tiny tokenizer built in-process.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_pipeline_repo, run_cmd

DATA_STAGES = ["ingest", "clean", "tokenize", "label"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path, corpus: list[dict[str, str]]) -> Path:
    root = make_pipeline_repo(
        tmp_path_factory.mktemp("pipeline"),
        {
            "ingest": {"source": "data/external/news.csv", "id_field": "id"},
            "tokenize": {"model": str(tiny_bert), "max_length": 16},
        },
    )
    with open(root / "data" / "external" / "news.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "text", "label"])
        w.writeheader()
        w.writerows(corpus)
        w.writerow({"id": "dup", "text": corpus[0]["text"], "label": corpus[0]["label"]})
        w.writerow({"id": "html", "text": "<p>" + corpus[1]["text"] + "</p>", "label": corpus[1]["label"]})
    run_cmd(["dvc", "repro", "label"], root)
    return root


def test_repro_writes_every_declared_output(repo: Path) -> None:
    clean = json.loads((repo / "reports" / "clean.json").read_text())
    assert clean["duplicates"] == 2 and clean["rejected"] == 0  # the copy, and the HTML-wrapped copy
    assert clean["rows_out"] == 90 and clean["rows_changed_by_rule"]["html"] == 1
    label = json.loads((repo / "reports" / "label.json").read_text())
    assert label["classes"] == ["business", "sport", "tech"] and sum(label["rows"].values()) == 90
    assert json.loads((repo / "data" / "processed" / "labels.json").read_text()) == {
        "0": "business",
        "1": "sport",
        "2": "tech",
    }

    from datasets import load_from_disk

    dd = load_from_disk(str(repo / "data" / "processed" / "splits"))
    assert set(dd) == {"train", "validation", "test"}
    texts = [set(dd[s]["text"]) for s in dd]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert max(len(x) for x in dd["train"]["input_ids"]) <= 16


def test_second_repro_is_a_no_op(repo: Path) -> None:
    out = run_cmd(["dvc", "repro", "label"], repo).stdout
    assert "Data and pipelines are up to date" in out or all(
        f"Stage '{s}' didn't change" in out for s in DATA_STAGES
    )


def test_other_sections_do_not_touch_data_stages_but_own_params_do(repo: Path) -> None:
    params_file = repo / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    try:
        params.setdefault("finetune", {})["learning_rate"] = 1.0
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        assert "up to date" in run_cmd(["dvc", "status", *DATA_STAGES], repo).stdout
        params["clean"]["min_words"] = 4
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        status = run_cmd(["dvc", "status", *DATA_STAGES], repo).stdout
        assert "clean:" in status and "ingest:" not in status
    finally:
        params_file.write_text(original)


def test_changed_source_file_reruns_ingest(repo: Path) -> None:
    src = repo / "data" / "external" / "news.csv"
    original = src.read_bytes()
    try:
        src.write_bytes(original + b'extra,"a brand new story about market profit",business\n')
        assert "ingest:" in run_cmd(["dvc", "status", "ingest"], repo).stdout
    finally:
        src.write_bytes(original)


def test_a_bad_param_stops_the_stage_with_its_message(repo: Path) -> None:
    params_file = repo / "params.yaml"
    original = params_file.read_text()
    try:
        params_file.write_text(original.replace("min_words: 3", "min_words: -1"))
        proc = run_cmd(["dvc", "repro", "clean"], repo, check=False)
        assert proc.returncode != 0
        assert "`clean.min_words` = -1 is invalid" in proc.stdout + proc.stderr
    finally:
        params_file.write_text(original)
