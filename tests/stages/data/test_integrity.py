"""validate's integrity checks: each check on in-memory splits, and the profile and compact profile they pass."""

from __future__ import annotations

import random

import pandas as pd

from stages.config.validate import ValidateParams
from stages.data.integrity import validate
from stages.data.profile import CHAR_BINS

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
    assert compact is not None and compact.format == 1 and compact.classes == CLASSES
    assert compact.class_counts["test"] == {"business": 5, "sport": 5, "tech": 5}
    assert sum(compact.length_hist["chars"]["train"]) == 60 and compact.length_bins["chars"] == CHAR_BINS
    assert {s.split for s in compact.sample} <= {"train", "validation"} and len(compact.sample) == 75


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
