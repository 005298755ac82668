"""Label sets (`label.task: multi_label`) through each data piece: ingest's cells, clean's conflicts, the
label fold and split, validate's figures, drift's distances, and finetune's refusal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from datasets import Dataset

from stages.config.clean import CleanParams
from stages.config.ingest import IngestParams
from stages.config.label import LabelParams
from stages.data.cleaning import clean_table
from stages.data.drift import compare_profiles
from stages.data.label_profile import cardinality, has_label, top_pairs
from stages.data.labels import canonicalise
from stages.data.raw import ingest
from stages.data.sources import IngestError
from stages.data.split import split_groups
from stages.model.splits import is_label_sets

MULTI = "multi_label"
TEXTS = [
    "Shares in the chip maker rose after it beat profit forecasts.",
    "The striker scored twice as the league leaders won the cup tie.",
    "A new phone network promises faster data for rural users.",
    "Investors sold bank shares as the economy slowed this quarter.",
]


def test_csv_separator_splits_strips_and_sorts(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text(f"text,label\n{TEXTS[0]},tech| business |tech\n{TEXTS[1]},|\n")
    df, rejects, report = ingest(IngestParams(source=str(src), label_separator="|"), MULTI)
    assert df["label"].tolist() == [["business", "tech"]]
    assert [r["reason"] for r in rejects] == ["empty label set in `label`"]
    assert report["labels"] == {"business": 1, "tech": 1}


def test_zero_one_columns_quarantine_a_two_and_a_blank(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    rows = [f"{TEXTS[0]},0,1", f"{TEXTS[1]},2,0", f"{TEXTS[2]},,1", f"{TEXTS[3]},1,1"]
    src.write_text("text,sport,tech\n" + "\n".join(rows) + "\n")
    df, rejects, _ = ingest(IngestParams(source=str(src), label_columns=["sport", "tech"]), MULTI)
    assert df["label"].tolist() == [["tech"], ["sport", "tech"]]
    assert [r["reason"] for r in rejects] == [
        "label column `sport` is not 0/1 (got '2')",
        "label column `sport` is not 0/1 (got '')",
    ]


def test_parquet_list_cells_and_jsonl_non_lists(tmp_path: Path) -> None:
    pd.DataFrame({"text": TEXTS[:2], "label": [["tech", "business"], ["sport"]]}).to_parquet(
        tmp_path / "a.pq"
    )
    df, rejects, _ = ingest(IngestParams(source=str(tmp_path / "a.pq")), MULTI)
    assert df["label"].tolist() == [["business", "tech"], ["sport"]] and not rejects
    src = tmp_path / "b.jsonl"
    src.write_text(f'{{"text": "{TEXTS[0]}", "label": "tech"}}\n{{"text": "{TEXTS[1]}", "label": [true]}}\n')
    with pytest.raises(IngestError, match="no usable row"):
        ingest(IngestParams(source=str(src)), MULTI)


def test_a_label_holding_the_set_separator_is_quarantined(tmp_path: Path) -> None:
    src = tmp_path / "t.jsonl"
    src.write_text(
        f'{{"text": "{TEXTS[0]}", "label": ["a|b"]}}\n{{"text": "{TEXTS[1]}", "label": ["sport"]}}\n'
    )
    df, rejects, _ = ingest(IngestParams(source=str(src)), MULTI)
    assert df["label"].tolist() == [["sport"]]
    assert [r["reason"] for r in rejects] == [
        "label `a|b` contains '|', which joins a set's labels into one string in predictions and served "
        "answers; rename the label"
    ]


def test_label_set_keys_refused_for_single_label(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text(f"text,label\n{TEXTS[0]},tech\n")
    with pytest.raises(IngestError, match=r"ingest.label_separator = '\|' .* label.task is single_label"):
        ingest(IngestParams(source=str(src), label_separator="|"))


def test_clean_conflict_is_a_different_folded_set() -> None:
    df = pd.DataFrame(
        {
            "id": ["1", "2", "3", "4"],
            "text": [TEXTS[0], TEXTS[0], TEXTS[1], TEXTS[1]],
            "label": [["Tech", "business"], ["business", "tech"], ["sport"], ["sport", "tech"]],
        }
    )
    out, quarantine, report = clean_table(df, CleanParams(max_reject_fraction=1.0), LabelParams(task=MULTI))
    assert out["id"].tolist() == ["1"] and report["conflicting_duplicate_groups"] == 1
    assert sorted(q["reason"] for q in quarantine) == [
        "conflicting_labels",
        "conflicting_labels",
        "duplicate",
    ]


def sets_frame(n: int = 60) -> pd.DataFrame:
    labels = [["business"], ["sport"], ["business", "tech"]]
    sets = [labels[i % 3] + (["rare"] if i < 2 else []) for i in range(n)]
    sets[5] = ["rare"]
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": [TEXTS[i % 4] + f" ({i})" for i in range(n)],
            "label": sets,
        }
    ).assign(group=lambda d: d["id"])


def test_canonicalise_sets_removes_rare_labels_and_quarantines_empty_rows() -> None:
    kept, quarantine, names = canonicalise(sets_frame(), LabelParams(task=MULTI))
    assert names == ["business", "sport", "tech"] and len(kept) == 59
    assert quarantine[0]["id"] == "r5" and quarantine[0]["reason"].startswith(
        "no label left: `rare` has 3 rows"
    )
    assert all("rare" not in s for s in kept["label"])


def test_stable_split_of_sets_moves_no_row_when_data_grows() -> None:
    p = LabelParams(task=MULTI, min_class_rows=3)
    small, _, _ = canonicalise(sets_frame(60), p)
    big, _, _ = canonicalise(sets_frame(90), p)
    side = {r: k for k, v in split_groups(small, p).items() for r in v["id"]}
    grown = {r: k for k, v in split_groups(big, p).items() for r in v["id"]}
    assert all(grown[r] == s for r, s in side.items())


def test_cardinality_and_pairs() -> None:
    labels = pd.Series([["a", "b"], ["a"], ["a", "b", "c"], ["b", "c"]])
    assert cardinality(labels) == {"mean": 2.0, "median": 2.0, "max": 3, "hist": {"1": 1, "2": 2, "3": 1}}
    assert top_pairs(labels, 2) == [
        {"labels": ["a", "b"], "rows": 2, "share": 0.5},
        {"labels": ["b", "c"], "rows": 2, "share": 0.5},
    ]
    assert has_label(labels, "c").tolist() == [False, False, True, True]


def profile(counts: dict[str, int], hist: dict[str, int]) -> dict[str, object]:
    sample = [
        {"id": f"x{i}", "group": f"x{i}", "split": "train", "label": ["a"], "text": "t"} for i in range(3)
    ]
    return {
        "format": 1,
        "class_counts": {"train": counts},
        "length_bins": {"tokens": [0, 4, 10**9]},
        "length_hist": {"tokens": {"train": [1, 2]}},
        "sample": sample,
        "label_sets": {"cardinality": {"train": {"mean": 1.5, "hist": hist}}, "top_pairs": []},
    }


def test_drift_compares_label_shares_and_cardinality() -> None:
    same = compare_profiles(profile({"a": 5, "b": 5}, {"1": 4}), profile({"a": 5, "b": 5}, {"1": 4}), None)
    assert same["label_js"] == 0.0 and same["cardinality_js"] == 0.0
    moved = compare_profiles(profile({"a": 5, "b": 5}, {"1": 4}), profile({"a": 5, "b": 5}, {"2": 4}), None)
    assert moved["cardinality_js"] == 1.0


def test_finetune_tells_label_sets_from_class_ids() -> None:
    from datasets import ClassLabel, Features, List

    sets = Features({"label": List(ClassLabel(names=["a", "b"]))})
    ids = Features({"label": ClassLabel(names=["a", "b"])})
    assert is_label_sets(Dataset.from_dict({"label": [[0, 1], [1]]}, features=sets))
    assert not is_label_sets(Dataset.from_dict({"label": [0, 1]}, features=ids))
