"""The pure gate: both policies, one-sided McNemar, the per-class guard, the compared rows, the tags."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stages.config.params import ParamsError, validate_section
from stages.config.register import GateParams, RegisterParams
from stages.data.trained_on import TrainedOn
from stages.gate.checks import (
    Candidate,
    ChampionScore,
    mcnemar,
    mcnemar_worse,
    run_gate,
    unseen_rows,
)
from stages.registry import tags as registry_tags
from stages.registry.register_run import decision_tags

# absolute checks out of the way: these tests are about the comparison with the champion
LOOSE = {"min_primary": 0.0, "baseline_tolerance": 1.0, "baseline_margin": -1.0}


def rows(spec: dict[str, int]) -> list[str]:
    """{"a": 3, "b": 2} -> ["a", "a", "a", "b", "b"]: the true labels."""
    return [c for c, n in spec.items() for _ in range(n)]


def swap(truth: list[str], wrong: dict[str, tuple[int, str]]) -> list[str]:
    """Predictions equal to `truth` except the first n rows of class c, predicted as `to`."""
    out, seen = [], dict.fromkeys(wrong, 0)
    for t in truth:
        if t in wrong and seen[t] < wrong[t][0]:
            seen[t] += 1
            out.append(wrong[t][1])
        else:
            out.append(t)
    return out


def case(
    truth: list[str], cand_pred: list[str], champ_pred: list[str], version: str = "1"
) -> tuple[Candidate, ChampionScore]:
    labels = sorted(set(truth))
    test = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(len(truth))],
            "group": [f"g{i}" for i in range(len(truth))],
            "text": [f"text {i}" for i in range(len(truth))],
            "label": truth,
            "pred": cand_pred,
            "correct": [int(p == t) for p, t in zip(cand_pred, truth, strict=True)],
        }
    )
    metrics = {"primary_metric": "macro_f1", "model": {"macro_f1": 0.95}, "baseline": {"macro_f1": 0.9}}
    cand = Candidate(Path("."), metrics, "macro_f1", labels, test)
    champ = ChampionScore(version, labels, champ_pred, ids=list(test["id"]), trained_on_known=True)
    return cand, champ


def by_name(decision: object) -> dict[str, object]:
    return {c.name: c for c in decision.checks}  # type: ignore[attr-defined]


def test_one_sided_mcnemar_tests_only_the_candidate_being_worse() -> None:
    assert mcnemar_worse(0, 10) == (pytest.approx(0.5**10), "exact-binomial")
    assert mcnemar_worse(10, 0)[0] == pytest.approx(1.0)  # candidate ahead: no evidence it is worse
    assert mcnemar_worse(0, 0) == (1.0, "exact-binomial")
    # above 25 discordant pairs: the continuity-corrected normal, half the two-sided chi-square p
    p, method = mcnemar_worse(10, 30)
    assert method == "normal-continuity" and p == pytest.approx(mcnemar(10, 30)[0] / 2, rel=1e-6)
    assert mcnemar_worse(30, 10)[0] > 0.99


def test_non_inferiority_promotes_a_candidate_within_the_margin() -> None:
    truth = rows({"a": 100, "b": 100})
    cand, champ = case(truth, swap(truth, {"a": (1, "b")}), truth)  # one more error than the champion
    d = run_gate(GateParams(**LOOSE), cand, champ)
    checks = by_name(d)
    assert d.promote and d.policy == "non_inferiority", d.checks
    assert checks["margin"].outcome == "pass" and -0.01 < checks["margin"].value < 0
    assert "allowed shortfall 0.0100 (register.gate.margin" in checks["margin"].reason
    assert (
        checks["significance"].outcome == "pass"
        and "not significantly worse" in checks["significance"].reason
    )
    assert checks["per_class"].outcome == "pass"
    # the same candidate under superiority: not an improvement, not significant
    d = run_gate(GateParams(policy="superiority", **LOOSE), cand, champ)
    assert not d.promote and {"improvement", "significance"} <= set(by_name(d))
    assert "margin" not in by_name(d)


def test_non_inferiority_fails_beyond_the_margin() -> None:
    truth = rows({"a": 100, "b": 100})
    cand, champ = case(truth, swap(truth, {"a": (8, "b")}), truth)
    d = run_gate(GateParams(**LOOSE), cand, champ)
    checks = by_name(d)
    assert not d.promote
    assert checks["margin"].outcome == "fail" and checks["margin"].value < -0.01
    assert checks["significance"].outcome == "fail" and "significantly worse than champion v1" in (
        checks["significance"].reason
    )
    assert checks["significance"].value == pytest.approx(0.5**8)
    # a small test set: beyond the margin, but not significantly worse; the margin alone decides
    truth = rows({"a": 10, "b": 10})
    cand, champ = case(truth, swap(truth, {"a": (1, "b")}), truth)
    d = run_gate(GateParams(max_class_drop=0.5, **LOOSE), cand, champ)
    checks = by_name(d)
    assert not d.promote and checks["margin"].outcome == "fail" and checks["significance"].outcome == "pass"


def test_superiority_needs_a_significant_gain() -> None:
    truth = rows({"a": 100, "b": 100})
    gate = GateParams(policy="superiority", **LOOSE)
    cand, champ = case(truth, truth, swap(truth, {"a": (2, "b")}))  # 2 rows better: p = 0.5
    d = run_gate(gate, cand, champ)
    checks = by_name(d)
    assert not d.promote and checks["improvement"].outcome == "pass"
    assert (
        checks["significance"].outcome == "fail"
        and "not significantly different" in checks["significance"].reason
    )
    cand, champ = case(truth, truth, swap(truth, {"a": (6, "b"), "b": (6, "a")}))  # 12 rows better
    d = run_gate(gate, cand, champ)
    assert d.promote and by_name(d)["significance"].value == pytest.approx(2 * 0.5**12)


def test_per_class_guard_names_the_class_and_both_figures() -> None:
    """A better average hides a class that lost 15 points of recall; the guard catches it."""
    truth = rows({"a": 100, "b": 100, "c": 20, "d": 3})
    champ_pred = swap(truth, {"a": (10, "b"), "b": (10, "a")})  # weaker on a and b, perfect on c
    cand_pred = swap(truth, {"c": (3, "a")})  # perfect on a and b, loses 3 of 20 in c
    cand, champ = case(truth, cand_pred, champ_pred)
    d = run_gate(GateParams(**LOOSE), cand, champ)
    checks = by_name(d)
    assert checks["margin"].outcome == "pass" and checks["margin"].value > 0  # the average improved
    assert checks["significance"].outcome == "pass"
    guard = checks["per_class"]
    assert not d.promote and guard.outcome == "fail"
    assert "class `c`: recall 0.850 vs champion v1 1.000 (-0.150)" in guard.reason
    assert "class `c`: f1 0.919 vs champion v1 1.000" in guard.reason
    assert "`d` (3)" in guard.reason and "register.gate.max_class_drop" in guard.reason
    assert d.comparison["per_class"]["c"]["rows"] == 20
    # a looser guard lets it through, and still names the small class it could not judge
    d = run_gate(GateParams(max_class_drop=0.2, **LOOSE), cand, champ)
    assert (
        d.promote
        and "skipped" in by_name(d)["per_class"].reason
        and "`d` (3)" in by_name(d)["per_class"].reason
    )


def test_compared_rows_exclude_what_the_champion_saw_by_id_or_group() -> None:
    truth = rows({"a": 4, "b": 4})
    cand, _ = case(truth, truth, truth)
    cand.test.loc[5, "group"] = "shared-group"
    record = TrainedOn.from_splits({"train": (["r0", "r1"], ["x", "shared-group"]), "validation": ([], [])})
    kept = unseen_rows(cand.test, record)
    assert kept["id"].tolist() == ["r2", "r3", "r4", "r6", "r7"]  # r0, r1 by id; r5 by its group
    assert unseen_rows(cand.test, None) is cand.test


def test_comparison_reports_rows_left_out_or_why_all_rows_were_used() -> None:
    truth = rows({"a": 50, "b": 50})
    cand, champ = case(truth, truth, truth)
    champ.ids, champ.preds, champ.left_out = champ.ids[:40], champ.preds[:40], 60
    d = run_gate(GateParams(**LOOSE), cand, champ)
    assert d.comparison["rows"] == 40 and d.comparison["left_out_seen"] == 60
    assert "on 40 of 100 test rows (60 left out: champion v1 trained or validated on them)" in (
        by_name(d)["margin"].reason
    )
    # a champion registered before the record existed: every row, and the report says so
    cand, champ = case(truth, truth, truth)
    champ.trained_on_known = False
    reason = by_name(run_gate(GateParams(**LOOSE), cand, champ))["margin"].reason
    assert "on all 100 test rows (champion v1 has no record of what it trained on" in reason
    # nothing left to compare on: no fair comparison, the gate refuses and says what to do
    champ.ids, champ.preds, champ.left_out, champ.trained_on_known = [], [], 100, True
    d = run_gate(GateParams(**LOOSE), cand, champ)
    assert not d.promote and by_name(d)["margin"].outcome == "fail"
    assert "no fair comparison" in by_name(d)["margin"].reason and by_name(d)["per_class"].outcome == "skip"


def test_an_unknown_champion_label_set_names_the_registry_tag() -> None:
    """The gate imports nothing of the registry; its reason still names the tag the labels live in."""
    truth = rows({"a": 30, "b": 30})
    cand, champ = case(truth, truth, truth)
    champ.labels = None
    reason = by_name(run_gate(GateParams(**LOOSE), cand, champ))["labels"].reason
    assert f"no `{registry_tags.LABELS}` tag" in reason


def test_each_check_is_a_tag_and_the_policy_is_recorded() -> None:
    truth = rows({"a": 30, "b": 30})
    cand, champ = case(truth, truth, truth)
    d = run_gate(GateParams(**LOOSE), cand, champ, None, "champion v1 has no stored data profile")
    tags = decision_tags(d)
    assert tags["gate.policy"] == "non_inferiority" and tags["gate.decision"] == "promote"
    for check in ("floor", "baseline", "labels", "margin", "significance", "per_class", "drift"):
        assert tags[f"gate.{check}.outcome"] in ("pass", "skip") and tags[f"gate.{check}.reason"]
    assert tags["gate.drift.reason"] == "champion v1 has no stored data profile"
    assert tags["gate.rows"] == "60" and tags["gate.left_out_seen"] == "0"


def test_gate_params_validate_policy_and_drift_threshold() -> None:
    p = validate_section(
        "register", {"gate": {"policy": "superiority", "max_drift_auc": 0.8}}, RegisterParams
    )
    assert p.gate.policy == "superiority" and p.gate.max_drift_auc == 0.8
    assert GateParams().policy == "non_inferiority" and GateParams().max_drift_auc is None
    with pytest.raises(ParamsError, match="register.gate.policy"):
        validate_section("register", {"gate": {"policy": "better"}}, RegisterParams)
    with pytest.raises(ParamsError, match="register.gate.max_drift_auc"):
        validate_section("register", {"gate": {"max_drift_auc": 0.3}}, RegisterParams)
