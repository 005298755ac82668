"""validate's entry point on saved splits: both profiles written, or the report kept and no profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.data.integrity import ValidateError
from stages.validate import main
from tests.stages.data.test_integrity import CLASSES, frames


@pytest.fixture
def saved_splits(tmp_path: Path) -> tuple[Path, Path]:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features(
        {
            "id": Value("string"),
            "text": Value("string"),
            "label": ClassLabel(names=CLASSES),
            "group": Value("string"),
            "batch": Value("string"),
            "n_tokens": Value("int64"),
            "n_unk": Value("int64"),
            "truncated": Value("bool"),
        }
    )
    to_id = {n: i for i, n in enumerate(CLASSES)}
    dd = DatasetDict(
        {
            k: Dataset.from_pandas(v.assign(label=v["label"].map(to_id)), features=features)
            for k, v in frames().items()
        }
    )
    dd.save_to_disk(str(tmp_path / "splits"))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({str(i): n for i, n in enumerate(CLASSES)}))
    return tmp_path / "splits", labels


def _run(tmp_path: Path, splits: Path, labels: Path, params: str) -> list[str]:
    (tmp_path / "params.yaml").write_text(params)
    return [
        "--params",
        str(tmp_path / "params.yaml"),
        "--splits",
        str(splits),
        "--labels",
        str(labels),
        "--profile",
        str(tmp_path / "profile.json"),
        "--report",
        str(tmp_path / "data_profile.json"),
    ]


def test_entry_point_writes_both_profiles(tmp_path: Path, saved_splits: tuple[Path, Path]) -> None:
    main(_run(tmp_path, *saved_splits, "validate: {}\n"))
    assert json.loads((tmp_path / "data_profile.json").read_text())["headline"]["passed"]
    assert json.loads((tmp_path / "profile.json").read_text())["rows"] == {
        "train": 60,
        "validation": 15,
        "test": 15,
    }


def test_entry_point_failure_keeps_the_report_and_removes_an_old_profile(
    tmp_path: Path, saved_splits: tuple[Path, Path]
) -> None:
    (tmp_path / "profile.json").write_text("{}")  # a previous good run's profile
    with pytest.raises(ValidateError, match=r"tech/|`tech` in the \w+ split has 5 rows"):
        main(_run(tmp_path, *saved_splits, "validate: {min_rows_per_split: 6}\n"))
    assert not (tmp_path / "profile.json").exists()
    assert not json.loads((tmp_path / "data_profile.json").read_text())["headline"]["passed"]
