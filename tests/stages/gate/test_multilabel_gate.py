"""The gate on label sets: the paired bootstrap under both policies, the per-label guard, the primary
metric param, the first version against the baseline's sets, and the version tags it writes."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pandas as pd
import pytest

from stages.config.params import ParamsError, validate_section
from stages.config.register import GateParams, RegisterParams
from stages.core.label_sets import MULTI_LABEL_TASK
from stages.gate.checks import (
    Candidate,
    ChampionScore,
    Check,
    Decision,
    GateParamError,
    SetComparison,
    run_gate,
)
from stages.registry import tags as registry_tags
from stages.registry.register_run import decision_tags

LABELS = ["sport", "tech", "world"]
LOOSE = {"min_primary": 0.0, "baseline_tolerance": 1.0, "baseline_margin": -1.0}
SETS = ["sport", "tech", "world", "sport|tech", "tech|world", "sport|world"]


def truth(n: int = 240) -> list[str]:
    return [SETS[i % len(SETS)] for i in range(n)]


def spoil(sets: list[str], every: int, to: str = "world") -> list[str]:
    """`sets` with every `every`-th row predicted as `to`."""
    return [to if i % every == 0 else s for i, s in enumerate(sets)]


def case(
    y: list[str], mine: list[str], theirs: list[str], baseline: list[str] | None = None
) -> tuple[Candidate, ChampionScore]:
    test = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(y))],
            "text": [f"text {i}" for i in range(len(y))],
            "label": y,
            "pred": mine,
            "correct": [int(a == b) for a, b in zip(mine, y, strict=True)],
        }
    )
    if baseline is not None:
        test["baseline_pred"] = baseline
    figures = {"micro_f1": 0.9, "macro_f1": 0.9, "accuracy": 0.8, "subset_accuracy": 0.8}
    metrics = {"primary_metric": "micro_f1", "task": MULTI_LABEL_TASK, "model": figures, "baseline": figures}
    cand = Candidate(Path("."), metrics, "micro_f1", LABELS, test, task=MULTI_LABEL_TASK)
    champ = ChampionScore("1", LABELS, theirs, ids=list(test["id"]), trained_on_known=True)
    return cand, champ


def by_name(d: Decision) -> dict[str, Check]:
    return {c.name: c for c in d.checks}


def test_an_identical_candidate_is_non_inferior_and_tagged_with_the_bootstrap() -> None:
    y = truth()
    pred = spoil(y, 7)
    cand, champ = case(y, pred, list(pred))
    d = run_gate(GateParams(**LOOSE), cand, champ)
    checks = by_name(d)
    assert d.promote, [(c.name, c.outcome, c.reason) for c in d.checks]
    assert d.comparison is not None and d.comparison["rows"] == 240
    assert "p_noninferiority" in d.comparison and "mcnemar_p" not in d.comparison
    assert d.comparison["p_noninferiority"] == pytest.approx(1 / 2001)
    assert d.comparison["p_superiority"] == 1.0
    sig = checks["significance"]
    assert (
        sig.outcome == "pass" and "paired bootstrap of the micro_f1 difference (2000 resamples" in sig.reason
    )
    assert "label's recall or F1" in checks["per_class"].reason
    tags = decision_tags(d)
    assert tags[f"{registry_tags.GATE_PREFIX}p_noninferiority"] == str(1 / 2001)
    assert tags[f"{registry_tags.GATE_PREFIX}primary_metric"] == "micro_f1"
    assert f"{registry_tags.GATE_PREFIX}mcnemar_p" not in tags
    # the same decision at every run (seeded)
    assert run_gate(GateParams(**LOOSE), cand, champ).as_dict() == d.as_dict()


def test_a_much_worse_candidate_fails_margin_and_non_inferiority() -> None:
    y = truth()
    cand, champ = case(y, spoil(y, 2), spoil(y, 11))
    d = run_gate(GateParams(**LOOSE), cand, champ)
    checks = by_name(d)
    assert not d.promote
    assert checks["margin"].outcome == "fail"
    assert checks["significance"].outcome == "fail"
    assert "significantly worse than champion v1: one-sided bootstrap" in checks["significance"].reason
    assert cast(SetComparison, d.comparison)["p_noninferiority"] > 0.9


def test_superiority_needs_a_significant_lead() -> None:
    y = truth()
    gate = GateParams(policy="superiority", **LOOSE)
    better, _ = case(y, list(y), spoil(y, 3))
    d = run_gate(gate, better, case(y, list(y), spoil(y, 3))[1])
    checks = by_name(d)
    assert checks["improvement"].outcome == "pass" and checks["significance"].outcome == "pass"
    assert "significantly better than champion v1: two-sided p = " in checks["significance"].reason
    same, champ = case(y, spoil(y, 3), spoil(y, 3))
    checks = by_name(run_gate(gate, same, champ))
    assert checks["significance"].outcome == "fail"
    assert "not significantly different from champion v1: two-sided p = 1" in checks["significance"].reason


def test_the_per_label_guard_names_the_label_that_fell_and_skips_small_ones() -> None:
    y = truth()
    # the candidate drops `world` from the two-label sets that end with it: recall 1/3 on its 120 rows
    mine = [s.replace("|world", "") if s.endswith("|world") else s for s in y]
    cand, champ = case(y, mine, list(y))
    gate = GateParams(**LOOSE, margin=1.0, max_class_drop=0.05, min_class_rows=5)
    checks = by_name(run_gate(gate, cand, champ))
    assert checks["per_class"].outcome == "fail"
    assert "label `world`: recall 0.333 vs champion v1 1.000 (-0.667)" in checks["per_class"].reason
    assert "label `tech`" not in checks["per_class"].reason
    # a label with fewer positive compared rows than min_class_rows is skipped, by name
    few = [s if i < 200 or "sport" not in s else "tech" for i, s in enumerate(y)]  # sport: 100 rows
    cand, champ = case(few, list(few), list(few))
    small = GateParams(**LOOSE, min_class_rows=101)
    check = by_name(run_gate(small, cand, champ))["per_class"]
    assert check.outcome == "pass" and "over 2 labels" in check.reason
    assert (
        "skipped (fewer than 101 compared rows, register.gate.min_class_rows): `sport` (100)" in check.reason
    )


def test_primary_metric_param_overrides_and_is_validated() -> None:
    y = truth()
    cand, champ = case(y, spoil(y, 7), spoil(y, 7))
    d = run_gate(GateParams(**LOOSE, primary_metric="macro_f1"), cand, champ)
    assert cast(SetComparison, d.comparison)["primary_metric"] == "macro_f1"
    assert "macro_f1" in by_name(d)["margin"].reason
    with pytest.raises(GateParamError, match=r"register\.gate\.primary_metric: 'weighted_f1' is not in"):
        run_gate(GateParams(**LOOSE, primary_metric="weighted_f1"), cand, champ)
    single = Candidate(Path("."), cand.metrics, "accuracy", LABELS, cand.test)
    with pytest.raises(GateParamError, match="not a metric the gate compares for one label per text"):
        run_gate(GateParams(**LOOSE, primary_metric="micro_f1"), single, None)
    with pytest.raises(ParamsError, match=r"register\.gate\.primary_metric") as err:
        validate_section("register", {"gate": {"primary_metric": "hamming_loss"}}, RegisterParams)
    assert len(str(err.value).splitlines()) == 1
    with pytest.raises(ParamsError, match=r"register\.gate\.bootstrap_samples"):
        validate_section("register", {"gate": {"bootstrap_samples": 10}}, RegisterParams)


def test_first_version_is_bootstrapped_against_the_baseline_sets() -> None:
    y = truth()
    gate = GateParams(min_primary=0.0)  # baseline_margin 0: the test runs
    ahead, _ = case(y, list(y), list(y), baseline=spoil(y, 2))
    check = by_name(run_gate(gate, ahead, None))["baseline_significance"]
    assert check.outcome == "pass" and "not significantly worse than the TF-IDF baseline" in check.reason
    behind, _ = case(y, spoil(y, 2), list(y), baseline=list(y))
    check = by_name(run_gate(gate, behind, None))["baseline_significance"]
    assert check.outcome == "fail" and check.value == pytest.approx(1 / 2001)
    same, _ = case(y, list(y), list(y), baseline=list(y))
    assert by_name(run_gate(gate, same, None))["baseline_significance"].outcome == "skip"
    sup = by_name(run_gate(GateParams(min_primary=0.0, policy="superiority"), ahead, None))
    assert sup["baseline_significance"].outcome == "pass"
    assert "significantly better than the TF-IDF baseline" in sup["baseline_significance"].reason
