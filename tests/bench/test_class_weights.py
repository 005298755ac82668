"""bench.class_weights: the skewed BBC cut and the paired summary (the training runs are the benchmark's)."""

from __future__ import annotations

import pytest

from bench.class_weights import skewed_bbc, summarise


def test_one_class_is_cut_to_its_share_the_same_way_each_time() -> None:
    df = skewed_bbc("business", 0.05)
    counts = df["label"].value_counts().to_dict()
    assert counts["business"] == 26  # 5% of 510
    assert counts["sports"] == 511 and len(df) == 2225 - 510 + 26
    assert df["id"].is_unique and (df["group"] == df["id"]).all()
    assert df.equals(skewed_bbc("business", 0.05))
    with pytest.raises(SystemExit, match="no class `nope`"):
        skewed_bbc("nope", 0.05)


def test_summary_pairs_the_arms_by_seed() -> None:
    fig = {"macro_f1": 0.0, "rare_f1": 0.0, "rare_recall": 0.0, "accuracy": 0.0, "ece": 0.0}
    runs = {
        "1/none": {**fig, "macro_f1": 0.70},
        "1/balanced": {**fig, "macro_f1": 0.80},
        "2/none": {**fig, "macro_f1": 0.90},
        "2/balanced": {**fig, "macro_f1": 0.85},
        "3/none": {**fig, "macro_f1": 0.5},  # its balanced arm is missing: left out
    }
    s = summarise(runs, [1, 2, 3])
    assert s["none_macro_f1"] == 0.8 and s["balanced_macro_f1"] == 0.825
    assert s["delta_macro_f1"] == {"mean": 0.025, "std": 0.1061, "better_in": 1, "of": 2}
