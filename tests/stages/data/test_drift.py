"""Drift between two data profiles: the distances, the domain classifier, and the gate's verdict on them."""

from __future__ import annotations

import random

import pytest

from stages.config.register import GateParams
from stages.data.drift import MIN_TEXTS, compare_profiles, domain_auc, js_distance, label_distance
from stages.data.trained_on import TrainedOn
from stages.gate.checks import drift_check
from tests.conftest import make_corpus
from tests.registry_support import make_profile

COOKING = "recipe oven flour butter sugar bake simmer garlic onion salt pepper sauce dough".split()


def split(rows: list[dict[str, str]], prefix: str) -> dict[str, list[dict[str, str]]]:
    """Rows 4:1:1 into train/validation/test, ids and groups prefixed so two profiles never share one."""
    rows = [{**r, "id": f"{prefix}{r['id']}", "group": f"{prefix}{r['id']}"} for r in rows]
    return {
        "train": rows[0::6] + rows[1::6] + rows[2::6] + rows[3::6],
        "validation": rows[4::6],
        "test": rows[5::6],
    }


def cooking_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [
        {
            "id": f"cook-{i}",
            "label": "business",
            "text": " ".join(rng.choice(COOKING) for _ in range(18)) + ".",
        }
        for i in range(n)
    ]


def test_js_distance_bounds() -> None:
    assert js_distance([5, 5], [5, 5]) == 0.0
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_distance([0, 0], [1, 1]) is None
    assert label_distance({"a": 10, "b": 10}, {"a": 10}) == pytest.approx(js_distance([1, 1], [1, 0]))


def test_identical_profiles_show_no_drift() -> None:
    """Same profile: distances 0. Same distribution, other texts: the domain classifier is at chance."""
    corpus = make_corpus(n_per_class=60, seed=3)
    prof = make_profile(split(corpus, "a-"))
    same = compare_profiles(prof, prof, None)
    assert same["label_js"] == 0.0 and same["length_js"] == 0.0
    assert same["domain_auc"] is None and same["texts"]["candidate_new"] == 0  # nothing new to tell apart
    # issue #33, item 4: not "too few texts (300 vs 0)", which read as a champion sample missing or unread
    assert any("all 150 of the candidate's sample texts are the champion's own" in n for n in same["notes"])
    assert not any("too few texts" in n for n in same["notes"])
    copies = {
        **prof,
        "sample": [{**r, "id": f"x{r['id']}", "group": f"x{r['group']}"} for r in prof["sample"]],
    }
    assert compare_profiles(prof, copies, None)["texts"]["candidate_new"] == 0  # verbatim copies are not new

    other = make_profile(split(make_corpus(n_per_class=60, seed=4), "b-"))
    out = compare_profiles(prof, other, None)
    assert out["label_js"] < 0.15 and out["length_js"] < 0.1  # same classes and lengths, other rows
    assert out["texts"] == {"champion": 150, "candidate_new": 150, "candidate_seen": 0}
    assert 0.3 < out["domain_auc"] < 0.7, out
    assert drift_check(out, GateParams()).outcome == "pass"


def test_texts_from_another_domain_are_told_apart() -> None:
    champion = make_profile(split(make_corpus(n_per_class=40, seed=3), "a-"))
    candidate = make_profile(split(cooking_rows(120), "b-"))
    out = compare_profiles(champion, candidate, None)
    assert out["domain_auc"] > 0.95 and out["label_js"] > 0.5
    check = drift_check(out, GateParams())
    assert (
        check.outcome == "warn" and "register.gate.warn_drift_auc" in check.reason
    )  # never blocks by default
    check = drift_check(out, GateParams(max_drift_auc=0.8))
    assert check.outcome == "fail" and "above 0.800 (register.gate.max_drift_auc)" in check.reason
    assert check.value == out["domain_auc"]


def test_candidate_texts_the_champion_trained_on_are_left_out() -> None:
    corpus = make_corpus(n_per_class=60, seed=3)
    rows = split(corpus, "")
    champion = make_profile(rows)
    trained = TrainedOn.from_splits(
        {s: ([r["id"] for r in rows[s]], [r["group"] for r in rows[s]]) for s in ("train", "validation")}
    )
    # the candidate's split moved the champion's test rows into training: only those are new to it
    moved = {"train": rows["train"] + rows["test"], "validation": rows["validation"], "test": []}
    out = compare_profiles(champion, make_profile(moved), trained)
    assert out["texts"] == {"champion": 150, "candidate_new": 30, "candidate_seen": 150}
    assert out["trained_on_record"] and out["domain_auc"] is not None
    assert domain_auc(["x"] * (MIN_TEXTS - 1), ["y"] * 50)[0] is None


def test_unusable_profiles_and_bins_are_skipped_with_a_reason() -> None:
    prof = make_profile(split(make_corpus(n_per_class=10), "a-"))
    out = compare_profiles(prof, {"format": 2}, None)
    assert out["label_js"] is None and "format 2" in out["notes"][0]
    rebinned = {**prof, "length_bins": {**prof["length_bins"], "tokens": [0, 10, 1000]}}
    out = compare_profiles(prof, rebinned, None)
    assert out["length_js"] is None and any("bins differ" in n for n in out["notes"])
    assert drift_check(None, GateParams(), "no champion yet").outcome == "skip"
    # a set threshold that cannot be enforced (too few texts) warns instead of passing silently
    assert drift_check(out, GateParams(max_drift_auc=0.8)).outcome == "warn"
