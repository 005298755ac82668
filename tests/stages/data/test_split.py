"""label's library: canonicalisation, quarantine, the stable (and random) group-aware split, clear errors."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from stages.config.label import LabelParams
from stages.data.labels import LabelError, canonicalise
from stages.data.split import SPLITS, label_report, ledger_of, movement, split_groups


def frame(labels: list[str], groups: list[str] | None = None) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "text": [f"t{i}" for i in range(n)],
            "label": labels,
            "group": groups or [f"g{i}" for i in range(n)],
        }
    )


def test_canonical_labels_aliases_and_quarantine() -> None:
    df = frame([" Sport ", "sports", "POLITICS", "weather", ""] + ["politics"] * 20 + ["sports"] * 20)
    p = LabelParams(aliases={"Sport": "sports"}, labels=["sports", "politics"])
    kept, quarantine, names = canonicalise(df, p)
    assert names == ["politics", "sports"]
    assert len(kept) == 43
    assert sorted(q["label"] for q in quarantine) == ["", "weather"]
    assert {q["reason"] for q in quarantine} == {"empty label", "label not in label.labels"}


def test_too_few_rows_names_the_class() -> None:
    df = frame(["a"] * 20 + ["b"] * 4)
    with pytest.raises(LabelError, match="`b` has 4 .*min_class_rows = 10"):
        canonicalise(df, LabelParams())


def test_one_class_is_an_error() -> None:
    with pytest.raises(LabelError, match="1 class"):
        canonicalise(frame(["a"] * 20), LabelParams())


def test_random_split_is_stratified_seeded_and_keeps_groups_together() -> None:
    labels = ["a"] * 60 + ["b"] * 40
    groups = [f"g{i // 2}" for i in range(100)]  # pairs of near-duplicates
    df = frame(labels, groups)
    p = LabelParams(validation_size=0.2, test_size=0.2, seed=7, split="random")
    s1, s2 = split_groups(df, p), split_groups(df, p)
    for name in s1:
        assert s1[name]["id"].tolist() == s2[name]["id"].tolist()
    seen = [set(s1[k]["group"]) for k in ("train", "validation", "test")]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert sum(len(v) for v in s1.values()) == 100
    for part in s1.values():
        share = (part["label"] == "a").mean()
        assert 0.5 <= share <= 0.7
    other = split_groups(df, LabelParams(validation_size=0.2, test_size=0.2, seed=8, split="random"))
    assert other["test"]["id"].tolist() != s1["test"]["id"].tolist()


def test_sizes_validation() -> None:
    with pytest.raises(ValueError, match="leaves under 10%"):
        LabelParams(validation_size=0.5, test_size=0.45)


def sides(splits: dict[str, pd.DataFrame]) -> dict[str, str]:
    return dict(zip(ledger_of(splits)["id"], ledger_of(splits)["split"], strict=True))


def big_frame(n: int, seed: int = 0, start: int = 0) -> pd.DataFrame:
    rng = random.Random(seed)
    labels = [rng.choice("abcd") for _ in range(n)]
    ids = [f"r{start + i}" for i in range(n)]
    return pd.DataFrame({"id": ids, "text": ids, "label": labels, "group": [f"g{i}" for i in ids]})


def test_growing_by_a_quarter_and_shrinking_by_a_tenth_moves_no_surviving_row() -> None:
    """The defect: a seeded train_test_split over all groups reshuffled every row when data grew."""
    p = LabelParams()
    before = big_frame(2000)
    grown = pd.concat([before, big_frame(500, seed=1, start=2000)], ignore_index=True)
    shrunk = grown.drop(index=random.Random(2).sample(range(len(grown)), 250)).reset_index(drop=True)
    s0, s1, s2 = (sides(split_groups(df, p)) for df in (before, grown, shrunk))
    assert all(s1[i] == side for i, side in s0.items())
    assert all(s0.get(i, s1[i]) == side and s1[i] == side for i, side in s2.items())
    # the old split does move them: the reason for the change
    r0 = sides(split_groups(before, LabelParams(split="random")))
    r1 = sides(split_groups(grown, LabelParams(split="random")))
    assert sum(r1[i] != side for i, side in r0.items()) > 300


def test_movement_counts_new_changed_and_removed_rows() -> None:
    p = LabelParams()
    before = big_frame(400)
    previous = ledger_of(split_groups(before, p))
    after = pd.concat([before.iloc[40:], big_frame(100, seed=1, start=400)], ignore_index=True)
    moves = movement(split_groups(after, p), previous)
    assert moves["previous_run"] and moves["removed"] == 40
    assert sum(moves["new"].values()) == 100 and sum(moves["changed_side"].values()) == 0
    reseeded = movement(split_groups(before, LabelParams(seed=43)), previous)
    assert sum(reseeded["new"].values()) == 0 and sum(reseeded["changed_side"].values()) > 100
    assert movement(split_groups(before, p), None) == {"previous_run": False}


def test_stable_split_keeps_groups_together_and_is_seeded() -> None:
    df = frame(["a"] * 60 + ["b"] * 40, [f"g{i // 2}" for i in range(100)])
    s1, s2 = split_groups(df, LabelParams(seed=7)), split_groups(df, LabelParams(seed=7))
    assert all(s1[k]["id"].tolist() == s2[k]["id"].tolist() for k in SPLITS)
    seen = [set(s1[k]["group"]) for k in SPLITS]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert split_groups(df, LabelParams(seed=8))["test"]["id"].tolist() != s1["test"]["id"].tolist()


def test_a_small_class_still_gets_a_group_in_every_split() -> None:
    df = frame(["big"] * 200 + ["small"] * 4)
    for seed in range(20):
        splits = split_groups(df, LabelParams(seed=seed))
        assert all((splits[k]["label"] == "small").sum() >= 1 for k in SPLITS), seed


def test_declared_labels_define_the_schema_even_without_rows() -> None:
    df = frame(["a"] * 20 + ["b"] * 20)
    kept, _, names = canonicalise(df, LabelParams(labels=["a", "b", "c"]))
    assert names == ["a", "b", "c"] and len(kept) == 40  # validate, not label, stops the missing class


@pytest.fixture(scope="module")
def bbc_groups() -> pd.DataFrame:
    """The real BBC corpus through the real ingest and clean code (no tokenizer needed for the split)."""
    from stages.config.clean import CleanParams
    from stages.config.ingest import IngestParams
    from stages.data.cleaning import clean_table
    from stages.data.raw import ingest

    raw, _, _ = ingest(IngestParams())
    clean, _, _ = clean_table(raw, CleanParams())
    return clean


def test_bbc_last_month_to_this_month_moves_no_row_and_keeps_class_shares(bbc_groups: pd.DataFrame) -> None:
    """The issue's measurement: last month = a random 80% of BBC, this month = all of it."""
    p = LabelParams()
    kept, quarantine, names = canonicalise(bbc_groups, p)
    last = kept.sample(frac=0.8, random_state=0)
    before = ledger_of(split_groups(last, p))
    now = split_groups(kept, p)
    moves = movement(now, before)
    assert sum(moves["changed_side"].values()) == 0
    assert sum(moves["new"].values()) == len(kept) - len(last)
    report = label_report(now, names, quarantine, p, moves)
    total = sum(report["rows"].values())
    for split, target in (("train", 0.7), ("validation", 0.15), ("test", 0.15)):
        assert abs(report["rows"][split] / total - target) <= 0.02, split
    # each class's share of each split against its share overall: a pure per-group hash has binomial
    # noise (about 1.7 points sd per class here); the README gives the spread over seeds
    assert report["max_class_share_gap"] <= 0.05
