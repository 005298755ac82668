"""validate: the profile, the compact profile, each integrity check, and the entry point on saved splits."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from stages.config.validate import ValidateParams
from stages.validate import CHAR_BINS, ValidateError, bottom_k_sample, main, validate

CLASSES = ["business", "sport", "tech"]
WORDS = {
    "business": "market shares profit bank economy company prices",
    "sport": "match goal team player coach league season",
    "tech": "software computer phone internet chip data users",
}


def rows(
    n: int, split: str, batch: str = "2026-10.csv", seed: int = 0, chars: int | None = None
) -> pd.DataFrame:
    rng = random.Random(f"{split}{batch}{seed}")
    out = []
    for i in range(n):
        label = CLASSES[i % 3]
        text = " ".join(rng.choice(WORDS[label].split()) for _ in range(30))
        text = text[:chars] if chars else text
        out.append(
            {
                "id": f"{batch}:{split}:{i}",
                "text": text,
                "label": label,
                "group": f"{batch}{split}{i}",
                "batch": batch,
                "n_tokens": len(text.split()) + 2,
                "n_unk": 0,
                "truncated": False,
            }
        )
    return pd.DataFrame(out)


def frames(**extra: pd.DataFrame) -> dict[str, pd.DataFrame]:
    base = {"train": rows(60, "train"), "validation": rows(15, "validation"), "test": rows(15, "test")}
    return {k: pd.concat([v, extra[k]], ignore_index=True) if k in extra else v for k, v in base.items()}


def failed(profile: dict) -> list[dict]:
    return [c for c in profile["checks"] if c["outcome"] == "fail"]


def test_healthy_data_passes_and_the_compact_profile_is_complete() -> None:
    profile, compact = validate(frames(), CLASSES, ValidateParams())
    assert profile["headline"]["passed"] and not failed(profile)
    assert profile["splits"]["train"]["classes"]["sport"]["rows"] == 20
    assert profile["top_ngrams"]["sport"][0] in WORDS["sport"].split()
    assert compact is not None and compact["format"] == 1 and compact["classes"] == CLASSES
    assert compact["class_counts"]["test"] == {"business": 5, "sport": 5, "tech": 5}
    assert (
        sum(compact["length_hist"]["chars"]["train"]) == 60 and compact["length_bins"]["chars"] == CHAR_BINS
    )
    assert {s["split"] for s in compact["sample"]} <= {"train", "validation"} and len(compact["sample"]) == 75


def test_a_declared_class_without_rows_stops_and_names_label_labels() -> None:
    profile, compact = validate(frames(), [*CLASSES, "weather"], ValidateParams())
    assert compact is None
    (check,) = failed(profile)
    assert check["check"] == "class_present" and "`weather`" in check["message"]
    assert "label.labels" in check["message"]


def test_a_class_short_in_one_split_names_the_class_split_and_key() -> None:
    f = frames()
    f["test"] = f["test"][f["test"]["label"] != "tech"].reset_index(drop=True)
    profile, compact = validate(f, CLASSES, ValidateParams())
    assert compact is None
    (check,) = failed(profile)
    assert check["subject"] == "tech/test" and "validate.min_rows_per_split = 5" in check["message"]


def test_text_the_tokenizer_cannot_read_names_max_unk_share() -> None:
    f = frames()
    f["train"].loc[f["train"]["label"] == "business", "n_unk"] = 10
    profile, _ = validate(f, CLASSES, ValidateParams())
    (check,) = failed(profile)
    assert check["subject"] == "business/train" and "validate.max_unk_share" in check["message"]


def test_a_batch_cut_to_a_few_characters_is_stopped_by_its_file_name() -> None:
    """A broken export is a small share of the data, so no split's median moves; its own median does."""
    cut = {
        k: rows(n, k, batch="2026-11.csv", chars=12)
        for k, n in (("train", 21), ("validation", 3), ("test", 3))
    }
    profile, compact = validate(frames(**cut), CLASSES, ValidateParams(min_batch_rows=20))
    assert compact is None
    (check,) = failed(profile)
    assert check["check"] == "min_batch_median_ratio" and check["subject"] == "2026-11.csv"
    assert "validate.min_batch_median_ratio" in check["message"]
    assert profile["batches"]["2026-11.csv"]["rows"] == 27


def test_the_sample_keeps_its_rows_when_data_grows() -> None:
    f = frames()
    small = {r["id"] for r in bottom_k_sample(f, 30, 100)}
    grown = frames(train=rows(60, "train", batch="2026-11.csv"))
    large = {r["id"] for r in bottom_k_sample(grown, 30, 100)}
    # a row leaves the sample only for a new row that hashes lower: every old row still in it was in it before
    assert {i for i in large if i.startswith("2026-10")} <= small


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
