"""label: canonicalisation, quarantine, group-aware stratified split, and the clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from stages.label import LabelError, LabelParams, canonicalise, split_groups


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


def test_split_is_stratified_seeded_and_keeps_groups_together() -> None:
    labels = ["a"] * 60 + ["b"] * 40
    groups = [f"g{i // 2}" for i in range(100)]  # pairs of near-duplicates
    df = frame(labels, groups)
    p = LabelParams(validation_size=0.2, test_size=0.2, seed=7)
    s1, s2 = split_groups(df, p), split_groups(df, p)
    for name in s1:
        assert s1[name]["id"].tolist() == s2[name]["id"].tolist()
    seen = [set(s1[k]["group"]) for k in ("train", "validation", "test")]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert sum(len(v) for v in s1.values()) == 100
    for part in s1.values():
        share = (part["label"] == "a").mean()
        assert 0.5 <= share <= 0.7
    other = split_groups(df, LabelParams(validation_size=0.2, test_size=0.2, seed=8))
    assert other["test"]["id"].tolist() != s1["test"]["id"].tolist()


def test_sizes_validation() -> None:
    with pytest.raises(ValueError, match="leaves under 10%"):
        LabelParams(validation_size=0.5, test_size=0.45)
