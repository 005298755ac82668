"""The promotion gate, pure: params, the checks, McNemar's test, the two policies, the per-class guard.

No MLflow and no registry here: the register stage gathers the inputs (the candidate's evaluated test
rows, the champion's predictions on the rows it never trained or validated on, the drift figures) and
`run_gate` returns every check with its outcome (pass | fail | warn | skip) and a reason that carries the
figures. A version is promoted only when no check fails; `warn` never blocks. The champion's own record
comes in as any `ChampionRecord`; the registry writes the decision as version tags
(stages/registry/register_run.py `decision_tags`).

Policies (`register.gate.policy`), for the comparison with the champion on the compared rows:
- `non_inferiority` (default; retraining on newer data): the candidate's primary metric is at most
  `margin` below the champion's (`margin` check) and a one-sided McNemar test does not show it
  significantly worse (`significance` check).
- `superiority` (recipe changes): at least `min_improvement` ahead (`improvement` check) and significantly
  better by a two-sided McNemar test, candidate ahead (`significance` check).
Under both, `per_class`: no class's recall or F1 falls by more than `max_class_drop` (classes with fewer
than `min_class_rows` compared rows are skipped, by name), and `drift` compares the data profiles.

Label sets (a candidate of `label.task: multi_label`): the same checks on the same compared rows, with
the primary metric micro_f1 (`register.gate.primary_metric: auto`) and a paired bootstrap of its difference
(stages/gate/sets.py) in place of McNemar: non_inferiority's `significance` passes when the bootstrap
rejects "the candidate is `margin` or more worse", superiority's when the two-sided bootstrap p is below
`significance` with the candidate ahead; `per_class` judges each label's recall and F1 (rows: the compared
rows carrying the label). A first version's `baseline_significance` is the same bootstrap against
evaluate's per-row baseline sets.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypedDict

import pandas as pd
from scipy.stats import binomtest, chi2, norm
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from stages.config.register import GateParams
from stages.core.label_sets import MULTI_LABEL_TASK, split_set
from stages.data.drift import DriftFigures, compare_profiles
from stages.data.trained_on import TrainedOn
from stages.gate.sets import SET_METRICS, indicator, paired_bootstrap, per_label
from stages.reports.profile import DataProfile

PRIMARY_METRICS = (
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "macro_precision",
    "macro_recall",
    "weighted_precision",
    "weighted_recall",
)
EXACT_BELOW = 25  # discordant pairs under which McNemar uses the exact binomial test
COMPARISON_CHECKS = {
    "superiority": ("improvement", "significance"),
    "non_inferiority": ("margin", "significance"),
}


# --------------------------------------------------------------------------- inputs


@dataclass
class Candidate:
    """What evaluate measured for the model about to be registered."""

    model_dir: Path
    metrics: dict[str, Any]
    primary_metric: str
    labels: list[str]  # id order
    test: pd.DataFrame  # id, text, label (name), pred, correct (and group) — one row per test example
    # multi_label: label, pred and baseline_pred are label-set strings ("a|b", names in id order)
    task: str = "single_label"


@dataclass
class ChampionScore:
    """The current champion scored on the candidate's test rows it never saw (or why it could not be).

    `preds` is aligned with `ids` (the compared test ids, in the candidate's order); `ids=None` means every
    candidate test row, in order. `left_out` counts the rows left out because the champion trained or
    validated on them; `trained_on_known` says whether the champion had a record of what it trained on.
    """

    version: str
    labels: list[str] | None
    preds: list[str] | None = None
    error: str | None = None
    ids: list[str] | None = None
    left_out: int = 0
    trained_on_known: bool = False


def unseen_rows(test: pd.DataFrame, trained_on: TrainedOn | None) -> pd.DataFrame:
    """The test rows whose id and group key are both absent from `trained_on` (all rows without a record)."""
    if trained_on is None:
        return test
    groups = test["group"] if "group" in test.columns else [None] * len(test)
    seen = trained_on.seen(test["id"].astype(str), groups)
    return test[[not s for s in seen]]


class ChampionRecord(Protocol):
    """What the gate reads of the champion's own record (the registry's `VersionRecord` is one)."""

    @property
    def version(self) -> str: ...
    @property
    def labels(self) -> list[str] | None: ...  # None: the version has no `labels` tag
    @property
    def trained_on(self) -> TrainedOn | None: ...
    @property
    def profile(self) -> dict[str, object] | None: ...  # as stored, of any ftpipe version: drift parses it


def drift_against(
    record: ChampionRecord | None, profile: DataProfile | None, profile_note: str
) -> tuple[DriftFigures | None, str]:
    """The drift figures of `profile` against the champion's stored one, or None with the reason."""
    if record is None:
        return None, "no champion yet"
    if profile is None:
        return None, profile_note
    if record.profile is None:
        return None, f"champion v{record.version} has no stored data profile (registered before profiles)"
    return compare_profiles(record.profile, profile, record.trained_on), ""


# --------------------------------------------------------------------------- statistics


class ClassScores(TypedDict):
    """One class on the compared rows: how many there are, and each model's recall and F1 on it."""

    rows: int
    candidate_recall: float
    champion_recall: float
    candidate_f1: float
    champion_f1: float


class Comparison(TypedDict):
    """Candidate vs champion on the compared rows (`paired_comparison`); stored in the gate's decision."""

    rows: int
    test_rows: int
    left_out_seen: int
    champion_trained_on_record: bool
    candidate_primary: float | None  # None: no row to compare on
    champion_primary: float | None
    candidate_errors: int
    champion_errors: int
    only_candidate_right: int
    only_champion_right: int
    mcnemar_p: float
    mcnemar_method: str
    mcnemar_p_worse: float
    mcnemar_worse_method: str
    per_class: dict[str, ClassScores]


def primary_score(y_true: list[str], y_pred: list[str], metric: str, labels: list[str]) -> float:
    """The primary metric from per-example predictions (macro averages over `labels`)."""
    if metric == "accuracy":
        return float(accuracy_score(y_true, y_pred))
    average, kind = metric.split("_")
    fn = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[kind]
    return float(fn(y_true, y_pred, labels=labels, average=average, zero_division=0))


def mcnemar(b: int, c: int) -> tuple[float, str]:
    """Two-sided McNemar p-value from the discordant counts b (only candidate right), c (only champion right)."""
    n = b + c
    if n == 0:
        return 1.0, "exact-binomial"
    if n < EXACT_BELOW:
        return float(binomtest(b, n, 0.5).pvalue), "exact-binomial"
    stat = (abs(b - c) - 1) ** 2 / n
    return float(chi2.sf(stat, 1)), "chi2-continuity"


def mcnemar_worse(b: int, c: int) -> tuple[float, str]:
    """One-sided McNemar p-value for "the candidate is worse" (c, only-champion-right, exceeds b).

    Exact binomial below `EXACT_BELOW` discordant pairs, else the continuity-corrected normal
    approximation (for c > b + 1 it is half the two-sided chi-square p-value).
    """
    n = b + c
    if n == 0:
        return 1.0, "exact-binomial"
    if n < EXACT_BELOW:
        return float(binomtest(c, n, 0.5, alternative="greater").pvalue), "exact-binomial"
    return float(norm.sf((c - b - 1) / math.sqrt(n))), "normal-continuity"


def per_class(y: list[str], cand: list[str], champ: list[str], classes: list[str]) -> dict[str, ClassScores]:
    """Per class: compared rows (true label), and recall and F1 of the candidate and of the champion."""

    def recall_f1(pred: list[str], c: str) -> tuple[float, float]:
        tp = sum(1 for t, p in zip(y, pred, strict=True) if t == c and p == c)
        fn = sum(1 for t, p in zip(y, pred, strict=True) if t == c and p != c)
        fp = sum(1 for t, p in zip(y, pred, strict=True) if t != c and p == c)
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        return recall, f1

    out: dict[str, ClassScores] = {}
    for c in classes:
        (cr, cf), (hr, hf) = recall_f1(cand, c), recall_f1(champ, c)
        out[c] = {
            "rows": y.count(c),
            "candidate_recall": cr,
            "champion_recall": hr,
            "candidate_f1": cf,
            "champion_f1": hf,
        }
    return out


def paired_comparison(cand: Candidate, champion: ChampionScore) -> Comparison:
    """Candidate vs champion on the compared rows: primary scores, discordant counts, McNemar, per class."""
    assert champion.preds is not None
    test = cand.test
    if champion.ids is not None:
        test = test.set_index(test["id"].astype(str)).loc[champion.ids].reset_index(drop=True)
    y = test["label"].tolist()
    cand_pred = test["pred"].astype(str).tolist()
    cand_ok = test["correct"].astype(bool).tolist()
    champ_ok = [p == t for p, t in zip(champion.preds, y, strict=True)]
    b = sum(1 for a, o in zip(cand_ok, champ_ok, strict=True) if a and not o)
    c = sum(1 for a, o in zip(cand_ok, champ_ok, strict=True) if o and not a)
    p, method = mcnemar(b, c)
    p_worse, method_worse = mcnemar_worse(b, c)
    labels = sorted(set(cand.labels) | set(champion.preds))
    classes = [x for x in cand.labels if champion.labels is None or x in champion.labels]
    return {
        "rows": len(y),
        "test_rows": len(cand.test),
        "left_out_seen": champion.left_out,
        "champion_trained_on_record": champion.trained_on_known,
        "candidate_primary": primary_score(y, cand_pred, cand.primary_metric, labels) if y else None,
        "champion_primary": primary_score(y, champion.preds, cand.primary_metric, labels) if y else None,
        "candidate_errors": cand_ok.count(False),
        "champion_errors": champ_ok.count(False),
        "only_candidate_right": b,
        "only_champion_right": c,
        "mcnemar_p": p,
        "mcnemar_method": method,
        "mcnemar_p_worse": p_worse,
        "mcnemar_worse_method": method_worse,
        "per_class": per_class(y, cand_pred, champion.preds, classes),
    }


class SetComparison(TypedDict):
    """Label sets: candidate vs champion on the compared rows (`set_comparison`), the paired bootstrap's
    figures in place of McNemar's; `per_class` holds each label (rows: compared rows carrying it)."""

    rows: int
    test_rows: int
    left_out_seen: int
    champion_trained_on_record: bool
    primary_metric: str
    candidate_primary: float | None  # None: no row to compare on
    champion_primary: float | None
    difference_ci95_low: float | None
    difference_ci95_high: float | None
    candidate_errors: int  # rows whose predicted set is not the true set
    champion_errors: int
    only_candidate_right: int
    only_champion_right: int
    bootstrap_samples: int
    p_noninferiority: float
    p_worse: float
    p_superiority: float
    per_class: dict[str, ClassScores]


def _compared_rows(cand: Candidate, champion: ChampionScore) -> pd.DataFrame:
    """The candidate's test rows the champion was scored on, in its order."""
    test = cand.test
    if champion.ids is not None:
        test = test.set_index(test["id"].astype(str)).loc[champion.ids].reset_index(drop=True)
    return test


def set_comparison(cand: Candidate, champion: ChampionScore, samples: int, margin: float) -> SetComparison:
    """Label sets: candidate vs champion on the compared rows, the paired bootstrap and each label's scores."""
    assert champion.preds is not None
    test = _compared_rows(cand, champion)
    extra = {n for s in champion.preds for n in split_set(s)} - set(cand.labels)  # a changed label set
    names = [*cand.labels, *sorted(extra)]
    y = indicator(test["label"].astype(str).tolist(), names)
    mine = indicator(test["pred"].astype(str).tolist(), names)
    theirs = indicator(champion.preds, names)
    m = cand.primary_metric
    boot = paired_bootstrap(y, mine, theirs, m, samples, margin) if len(y) else None
    mine_ok, theirs_ok = (y == mine).all(1), (y == theirs).all(1)
    support, mine_recall, mine_f1 = per_label(y, mine)
    _, theirs_recall, theirs_f1 = per_label(y, theirs)
    kept = [j for j, x in enumerate(cand.labels) if champion.labels is None or x in champion.labels]
    return {
        "rows": len(y),
        "test_rows": len(cand.test),
        "left_out_seen": champion.left_out,
        "champion_trained_on_record": champion.trained_on_known,
        "primary_metric": m,
        "candidate_primary": boot.candidate if boot else None,
        "champion_primary": boot.other if boot else None,
        "difference_ci95_low": boot.ci95[0] if boot else None,
        "difference_ci95_high": boot.ci95[1] if boot else None,
        "candidate_errors": int((~mine_ok).sum()),
        "champion_errors": int((~theirs_ok).sum()),
        "only_candidate_right": int((mine_ok & ~theirs_ok).sum()),
        "only_champion_right": int((theirs_ok & ~mine_ok).sum()),
        "bootstrap_samples": samples,
        "p_noninferiority": boot.p_noninferiority if boot else 1.0,
        "p_worse": boot.p_worse if boot else 1.0,
        "p_superiority": boot.p_superiority if boot else 1.0,
        "per_class": {
            names[j]: {
                "rows": int(support[j]),
                "candidate_recall": float(mine_recall[j]),
                "champion_recall": float(theirs_recall[j]),
                "candidate_f1": float(mine_f1[j]),
                "champion_f1": float(theirs_f1[j]),
            }
            for j in kept
        },
    }


class GateParamError(ValueError):
    """A gate param that does not fit the candidate (one line naming the key)."""


def resolve_primary(gate: GateParams, cand: Candidate) -> Candidate:
    """`cand` judged on `register.gate.primary_metric` (`auto`: metrics.json's `primary_metric`, unchanged)."""
    m = cand.primary_metric if gate.primary_metric == "auto" else gate.primary_metric
    if m == cand.primary_metric:
        return cand
    multi = cand.task == MULTI_LABEL_TASK
    allowed = SET_METRICS if multi else PRIMARY_METRICS
    kind = "label sets (label.task multi_label)" if multi else "one label per text"
    if m not in allowed:
        raise GateParamError(
            f"register.gate.primary_metric: {m!r} is not a metric the gate compares for {kind}; use auto or "
            f"one of {', '.join(allowed)}"
        )
    missing = [part for part in ("model", "baseline") if m not in cand.metrics.get(part, {})]
    if missing:
        raise GateParamError(
            f"register.gate.primary_metric: {m!r} is not in reports/metrics.json's {' and '.join(missing)} "
            "figures; use auto, or a metric evaluate reports for both (rerun evaluate)"
        )
    return replace(cand, primary_metric=m)


# --------------------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    outcome: str  # pass | fail | warn | skip
    reason: str
    value: float | None = None
    threshold: float | None = None


@dataclass
class Decision:
    promote: bool
    checks: list[Check]
    champion_before: str | None
    comparison: Comparison | SetComparison | None = field(default=None)
    policy: str = "non_inferiority"
    drift: DriftFigures | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": "promote" if self.promote else "reject",
            "promote": self.promote,
            "policy": self.policy,
            "champion_before": self.champion_before,
            "checks": [asdict(c) for c in self.checks],
            "comparison": self.comparison,
            "drift": self.drift,
        }


def _absolute_checks(gate: GateParams, cand: Candidate, first: bool) -> list[Check]:
    """The floor (only when `min_primary` is set) and the baseline: a first version (no champion) must lead
    it by `baseline_margin`, a later one may trail it by at most `baseline_tolerance`."""
    m = cand.primary_metric
    value = float(cand.metrics["model"][m])
    base = float(cand.metrics["baseline"][m])
    floor = gate.min_primary
    if floor is None:
        checks = [
            Check(
                "floor",
                "skip",
                f"no floor set (register.gate.min_primary is null): {m} {value:.4f} is judged against the "
                "baseline" + (" (first version)" if first else " and the champion"),
                value,
            )
        ]
    else:
        checks = [
            Check(
                "floor",
                "pass" if value >= floor else "fail",
                f"{m} {value:.4f} {'>=' if value >= floor else '<'} floor {floor:.4f} (register.gate.min_primary)",
                value,
                floor,
            )
        ]
    if first:
        need = gate.baseline_margin
        checks.append(
            Check(
                "baseline",
                "pass" if value - base >= need - 1e-12 else "fail",
                f"{m} {value:.4f} vs baseline {base:.4f}: {value - base:+.4f}, a first version (no champion "
                f"yet) must lead it by {need:+.4f} (register.gate.baseline_margin)",
                value - base,
                need,
            )
        )
        return checks
    checks.append(
        Check(
            "baseline",
            "pass" if value >= base - gate.baseline_tolerance else "fail",
            f"{m} {value:.4f} vs baseline {base:.4f}: {value - base:+.4f}, allowed shortfall "
            f"{gate.baseline_tolerance:.4f} (register.gate.baseline_tolerance)",
            value - base,
            -gate.baseline_tolerance,
        )
    )
    return checks


def baseline_significance_check(gate: GateParams, cand: Candidate) -> Check:
    """First version: McNemar on the same test rows, the candidate against the TF-IDF baseline.

    non_inferiority fails when the baseline is significantly better (one-sided); superiority needs the
    candidate significantly better (two-sided, candidate ahead). Skipped when `baseline_margin` lets the
    model trail the baseline, when evaluate wrote no per-row baseline predictions, or when the test set has too few discordant rows for any p below
    `significance` (then the margin decides)."""
    test = cand.test
    if gate.baseline_margin < 0:  # the user lets the model trail the baseline: nothing to test
        return Check(
            "baseline_significance",
            "skip",
            f"register.gate.baseline_margin {gate.baseline_margin:+.4f} lets the model trail the baseline: "
            "no test that it is not worse",
        )
    if "baseline_pred" not in test.columns:
        return Check(
            "baseline_significance",
            "skip",
            "no per-row baseline predictions (reports/predictions.csv has no baseline_pred: rerun evaluate)",
        )
    cand_ok = test["correct"].astype(bool).tolist()
    base_ok = [str(p) == str(t) for p, t in zip(test["baseline_pred"], test["label"], strict=True)]
    b = sum(1 for a, o in zip(cand_ok, base_ok, strict=True) if a and not o)
    c = sum(1 for a, o in zip(cand_ok, base_ok, strict=True) if o and not a)
    counts = f"only the model right on {b} of {len(test)} test rows, only the baseline on {c}"
    superiority = gate.policy == "superiority"
    smallest_p = min(1.0, (2.0 if superiority else 1.0) * 0.5 ** (b + c))
    if smallest_p >= gate.significance:
        return Check(
            "baseline_significance",
            "skip",
            f"too few rows where the model and the baseline disagree ({b + c}) for any McNemar p below "
            f"{gate.significance} (register.gate.significance): the margin decides; {counts}",
        )
    if superiority:
        p, method = mcnemar(b, c)
        reason = (
            f"McNemar ({method}, two-sided) p = {p:.4g}, needed < {gate.significance} with the model ahead"
        )
    else:
        p, method = mcnemar_worse(b, c)
        reason = f"one-sided McNemar ({method}) p = {p:.4g}, fails below {gate.significance}"
    return _baseline_verdict(gate, p, b > c, reason, counts)


def _baseline_verdict(gate: GateParams, p: float, ahead: bool, rule: str, figures: str) -> Check:
    """The first version's `baseline_significance` from its p: under superiority, p below alpha with the
    model ahead passes; under non_inferiority (p of "the model is worse"), p below alpha fails."""
    if gate.policy == "superiority":
        ok = p < gate.significance and ahead
        verdict = "significantly better than" if ok else "not significantly better than"
    else:
        ok = p >= gate.significance
        verdict = "not significantly worse than" if ok else "significantly worse than"
    return Check(
        "baseline_significance",
        "pass" if ok else "fail",
        f"{verdict} the TF-IDF baseline on the same test rows: {rule} (register.gate.significance, policy "
        f"{gate.policy}); {figures}",
        p,
        gate.significance,
    )


def set_baseline_significance_check(gate: GateParams, cand: Candidate) -> Check:
    """Label sets, first version: the paired bootstrap of the primary metric on the test rows, the candidate
    against the TF-IDF baseline's sets; the same outcomes and skips as `baseline_significance_check`."""
    test = cand.test
    if gate.baseline_margin < 0 or "baseline_pred" not in test.columns:
        return baseline_significance_check(gate, cand)  # its skip, with its reason
    m = cand.primary_metric
    y = indicator(test["label"].astype(str).tolist(), cand.labels)
    mine = indicator(test["pred"].astype(str).tolist(), cand.labels)
    base = indicator(test["baseline_pred"].astype(str).tolist(), cand.labels)
    differ = int((mine != base).any(1).sum())
    if not differ:
        return Check(
            "baseline_significance",
            "skip",
            f"the model and the baseline predict the same label set on all {len(test)} test rows: the "
            "margin decides",
        )
    boot = paired_bootstrap(y, mine, base, m, gate.bootstrap_samples)
    figures = (
        f"{m} {boot.candidate:.4f} vs baseline {boot.other:.4f}, paired bootstrap of the difference "
        f"({boot.samples} resamples of the {len(test)} test rows, {differ} where the sets differ): 95% "
        f"interval [{boot.ci95[0]:+.4f}, {boot.ci95[1]:+.4f}]"
    )
    if gate.policy == "superiority":
        p = boot.p_superiority
        rule = f"two-sided p = {p:.4g}, needed < {gate.significance} with the model ahead"
    else:
        p = boot.p_worse
        rule = f"one-sided p (model worse) = {p:.4g}, fails below {gate.significance}"
    return _baseline_verdict(gate, p, boot.difference > 0, rule, figures)


def labels_check(gate: GateParams, cand: Candidate, champion: ChampionScore) -> Check:
    v = champion.version
    if champion.labels is None:
        return Check("labels", "fail", f"the label set of champion v{v} is unknown (no `labels` tag)")
    if set(champion.labels) == set(cand.labels):
        return Check("labels", "pass", f"same {len(cand.labels)} labels as champion v{v}")
    diff = (
        f"added {sorted(set(cand.labels) - set(champion.labels))}, removed "
        f"{sorted(set(champion.labels) - set(cand.labels))}"
    )
    ok = gate.allow_label_change
    return Check(
        "labels",
        "pass" if ok else "fail",
        f"labels differ from champion v{v} ({diff}); "
        + (
            "allowed by register.gate.allow_label_change"
            if ok
            else "set register.gate.allow_label_change: true if the change is intended"
        ),
    )


class LabelSetChanged(ValueError):
    """A model whose label set is not the champion's, under the champion's registered model name."""


def _label_list(labels: set[str], most: int = 20) -> str:
    shown = sorted(labels)
    more = f", ... ({len(shown)} in all)" if len(shown) > most else ""
    return "[" + ", ".join(shown[:most]) + more + "]"


def require_same_labels(
    gate: GateParams, name: str, labels: list[str], champion: ChampionRecord | None
) -> None:
    """Refuse, before anything is registered, a model whose label set is not the champion's of `name`.

    A registered model name is one task: a model of other labels (typically your own dataset run with the
    shipped `register.model_name`) would only be registered to fail the gate's `labels` check against a
    champion of another task. Passes when there is no champion, its labels are unknown (the gate's
    `labels` check judges that), the sets are equal, or `register.gate.allow_label_change` is true.
    """
    if champion is None or champion.labels is None or gate.allow_label_change:
        return
    mine, theirs = set(labels), set(champion.labels)
    if mine == theirs:
        return
    raise LabelSetChanged(
        f"registered model `{name}` (register.model_name in params.yaml) is another task: its champion "
        f"v{champion.version} predicts {_label_list(theirs)}, this model predicts {_label_list(mine)} "
        f"(not in the champion's: {_label_list(mine - theirs)}; missing: {_label_list(theirs - mine)}). "
        f"Nothing was registered: new versions of `{name}` are judged against that champion, and a model "
        "of other labels would only fail the gate's `labels` check. For your own data, give it a model "
        "name of its own with `ftpipe init NAME --csv YOUR.csv` (or set `register.model_name: NAME` in "
        f"params.yaml) and run `ftpipe run` or `dvc repro` again; if `{name}` is meant to change its labels, "
        "set `register.gate.allow_label_change: true`."
    )


def rows_phrase(cmp: Comparison | SetComparison, version: str) -> str:
    """'on 48 of 319 test rows (271 left out: champion v1 trained or validated on them)', or why all rows."""
    if not cmp["champion_trained_on_record"]:
        return (
            f"on all {cmp['rows']} test rows (champion v{version} has no record of what it trained on, "
            "registered before ftpipe kept one: some rows may be its own training data)"
        )
    return (
        f"on {cmp['rows']} of {cmp['test_rows']} test rows ({cmp['left_out_seen']} left out: champion "
        f"v{version} trained or validated on them)"
    )


def policy_checks(gate: GateParams, cand: Candidate, cmp: Comparison, version: str) -> list[Check]:
    """The policy's two checks on the compared rows (at least one): (improvement | margin) and significance."""
    m, v = cand.primary_metric, version
    mine, theirs = cmp["candidate_primary"], cmp["champion_primary"]
    assert mine is not None and theirs is not None  # scored: there are compared rows
    gain = mine - theirs
    scores = f"{m} {mine:.4f} vs champion v{v} {theirs:.4f} {rows_phrase(cmp, v)}"
    b, c = cmp["only_candidate_right"], cmp["only_champion_right"]
    counts = (
        f"only the candidate right on {b} rows, only the champion on {c}; errors "
        f"{cmp['candidate_errors']} vs {cmp['champion_errors']}"
    )
    if gate.policy == "superiority":
        first = Check(
            "improvement",
            "pass" if gain >= gate.min_improvement else "fail",
            f"{scores}: {gain:+.4f}, needed >= {gate.min_improvement:+.4f} (register.gate.min_improvement)",
            gain,
            gate.min_improvement,
        )
        p = cmp["mcnemar_p"]
        ok = p < gate.significance and b > c
        verdict = (
            "significantly better than"
            if ok
            else "significantly worse than"
            if p < gate.significance
            else "not significantly different from"
        )
        second = Check(
            "significance",
            "pass" if ok else "fail",
            f"{verdict} champion v{v}: McNemar ({cmp['mcnemar_method']}, two-sided) p = {p:.4g}, needed < "
            f"{gate.significance} (register.gate.significance) with the candidate ahead; {counts}",
            p,
            gate.significance,
        )
        return [first, second]
    first = Check(
        "margin",
        "pass" if gain >= -gate.margin - 1e-12 else "fail",
        f"{scores}: {gain:+.4f}, allowed shortfall {gate.margin:.4f} (register.gate.margin, "
        "policy non_inferiority)",
        gain,
        -gate.margin,
    )
    p = cmp["mcnemar_p_worse"]
    worse = p < gate.significance
    second = Check(
        "significance",
        "fail" if worse else "pass",
        f"{'significantly worse than' if worse else 'not significantly worse than'} champion v{v}: one-sided "
        f"McNemar ({cmp['mcnemar_worse_method']}) p = {p:.4g}, fails below {gate.significance} "
        f"(register.gate.significance); {counts}",
        p,
        gate.significance,
    )
    return [first, second]


def _bootstrap_phrase(cmp: SetComparison, metric: str) -> str:
    return (
        f"paired bootstrap of the {metric} difference ({cmp['bootstrap_samples']} resamples of the compared "
        f"rows): 95% interval [{cmp['difference_ci95_low']:+.4f}, {cmp['difference_ci95_high']:+.4f}]; exact "
        f"sets: only the candidate right on {cmp['only_candidate_right']} rows, only the champion on "
        f"{cmp['only_champion_right']}"
    )


def set_policy_checks(gate: GateParams, cand: Candidate, cmp: SetComparison, version: str) -> list[Check]:
    """Label sets: the policy's two checks, (improvement | margin) as for one label, and the bootstrap's
    significance: superiority two-sided with the candidate ahead; non_inferiority fails only when the
    candidate is significantly worse (one-sided), as McNemar's does for one label."""
    m, v, alpha = cand.primary_metric, version, gate.significance
    mine, theirs = cmp["candidate_primary"], cmp["champion_primary"]
    assert mine is not None and theirs is not None  # scored: there are compared rows
    gain = mine - theirs
    scores = f"{m} {mine:.4f} vs champion v{v} {theirs:.4f} {rows_phrase(cmp, v)}"
    boot = _bootstrap_phrase(cmp, m)
    if gate.policy == "superiority":
        p = cmp["p_superiority"]
        ok = p < alpha and gain > 0
        verdict = (
            "significantly better than"
            if ok
            else "significantly worse than"
            if p < alpha
            else "not significantly different from"
        )
        return [
            Check(
                "improvement",
                "pass" if gain >= gate.min_improvement else "fail",
                f"{scores}: {gain:+.4f}, needed >= {gate.min_improvement:+.4f} (register.gate.min_improvement)",
                gain,
                gate.min_improvement,
            ),
            Check(
                "significance",
                "pass" if ok else "fail",
                f"{verdict} champion v{v}: two-sided p = {p:.4g}, needed < {alpha} (register.gate."
                f"significance) with the candidate ahead; {boot}",
                p,
                alpha,
            ),
        ]
    # as for one label: the margin bounds the shortfall, and significance fails only when the bootstrap
    # shows the candidate worse (one-sided, H0 "not worse"), never for a difference it cannot resolve
    p = cmp["p_worse"]
    worse = p < alpha
    return [
        Check(
            "margin",
            "pass" if gain >= -gate.margin - 1e-12 else "fail",
            f"{scores}: {gain:+.4f}, allowed shortfall {gate.margin:.4f} (register.gate.margin, "
            "policy non_inferiority)",
            gain,
            -gate.margin,
        ),
        Check(
            "significance",
            "fail" if worse else "pass",
            f"{'significantly worse than' if worse else 'not significantly worse than'} champion v{v}: "
            f"one-sided bootstrap p = {p:.4g}, fails below {alpha} (register.gate.significance); {boot}",
            p,
            alpha,
        ),
    ]


def per_class_check(
    gate: GateParams, cmp: Comparison | SetComparison, version: str, unit: str = "class"
) -> Check:
    """No class's recall or F1 may fall by more than `max_class_drop`; small classes are skipped by name.
    `unit` names them in the reasons: "label" for label sets (rows: the compared rows carrying it)."""
    limit, tol = gate.max_class_drop, 1e-12
    judged, small, failures = [], [], []
    worst: tuple[float, str] | None = None
    for c, s in cmp["per_class"].items():
        if s["rows"] < gate.min_class_rows:
            small.append(f"`{c}` ({s['rows']})")
            continue
        judged.append(c)
        for metric, cand, champ in (
            ("recall", s["candidate_recall"], s["champion_recall"]),
            ("f1", s["candidate_f1"], s["champion_f1"]),
        ):
            drop = champ - cand
            if worst is None or drop > worst[0]:
                worst = (drop, f"`{c}` {metric} {cand - champ:+.3f}")
            if drop > limit + tol:
                failures.append(
                    f"{unit} `{c}`: {metric} {cand:.3f} vs champion v{version} {champ:.3f} ({cand - champ:+.3f})"
                )
    skipped = (
        f"; skipped (fewer than {gate.min_class_rows} compared rows, register.gate.min_class_rows): "
        + ", ".join(small)
        if small
        else ""
    )
    if not judged:
        return Check("per_class", "skip", f"no {unit} has {gate.min_class_rows} compared rows{skipped}")
    if failures:
        return Check(
            "per_class",
            "fail",
            "; ".join(failures) + f" on {cmp['rows']} compared rows; allowed fall {limit:.3f} "
            f"(register.gate.max_class_drop){skipped}",
            worst[0] if worst else None,
            limit,
        )
    assert worst is not None
    return Check(
        "per_class",
        "pass",
        f"no {unit}'s recall or F1 fell by more than {limit:.3f} vs champion v{version} (register.gate."
        f"max_class_drop); largest change {worst[1]} over {len(judged)} {unit}{'es' if unit == 'class' else 's'}"
        f"{skipped}",
        worst[0],
        limit,
    )


def drift_check(drift: DriftFigures | None, gate: GateParams, unavailable: str = "no drift figures") -> Check:
    """Outcome of the drift figures (`stages.data.drift.compare_profiles`): pass, warn, or fail.

    Fails only when `max_drift_auc` is set and the domain AUC is above it; warns at `warn_drift_auc` or
    when a set `max_drift_auc` cannot be enforced (no AUC). `unavailable` is the reason when `drift` is None.
    """
    if drift is None:
        return Check("drift", "skip", unavailable)
    auc = drift.get("domain_auc")

    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    figures = (
        f"label JS distance {f(drift.get('label_js'))}, token-length JS distance {f(drift.get('length_js'))}, "
        f"domain AUC {f(auc)}" + (f" ({drift['domain_classifier']})" if auc is not None else "")
    )
    notes = "; ".join(drift.get("notes") or [])
    figures += f"; {notes}" if notes else ""
    cap = gate.max_drift_auc
    if cap is not None and auc is not None and auc > cap:
        return Check(
            "drift", "fail", f"{figures}; AUC above {cap:.3f} (register.gate.max_drift_auc)", auc, cap
        )
    if cap is not None and auc is None:
        return Check(
            "drift", "warn", f"{figures}; register.gate.max_drift_auc {cap:.3f} not enforced: no AUC"
        )
    if auc is not None and auc >= gate.warn_drift_auc:
        return Check(
            "drift",
            "warn",
            f"{figures}; AUC at or above {gate.warn_drift_auc:.3f} (register.gate.warn_drift_auc): the new data "
            "differs from the champion's; not blocking (register.gate.max_drift_auc "
            + ("is null)" if cap is None else f"{cap:.3f})"),
            auc,
            gate.warn_drift_auc,
        )
    return Check("drift", "pass", figures, auc, cap if cap is not None else gate.warn_drift_auc)


def _comparison_checks(
    gate: GateParams, cand: Candidate, champion: ChampionScore
) -> tuple[list[Check], Comparison | SetComparison | None]:
    """The policy's checks and `per_class` against a champion, and the comparison (None: not scored)."""
    v, names = champion.version, COMPARISON_CHECKS[gate.policy]
    if champion.preds is None:
        why = f"champion v{v} could not be scored on the test split: {champion.error}"
        return [*(Check(n, "fail", why) for n in names), Check("per_class", "skip", why)], None
    if cand.task == MULTI_LABEL_TASK:
        sets = set_comparison(cand, champion, gate.bootstrap_samples, gate.margin)
        if sets["rows"] == 0:
            return _nothing_compared(names, sets["test_rows"], v), sets
        checks = set_policy_checks(gate, cand, sets, v)
        return [*checks, per_class_check(gate, sets, v, unit="label")], sets
    comparison = paired_comparison(cand, champion)
    if comparison["rows"] == 0:
        return _nothing_compared(names, comparison["test_rows"], v), comparison
    return [*policy_checks(gate, cand, comparison, v), per_class_check(gate, comparison, v)], comparison


def _nothing_compared(names: tuple[str, ...], test_rows: int, version: str) -> list[Check]:
    why = (
        f"none of the {test_rows} test rows is new to champion v{version} (it trained or "
        "validated on all of them): no fair comparison is possible. Check the candidate by hand and "
        "use `ftpipe promote` if it should serve"
    )
    return [*(Check(n, "fail", why) for n in names), Check("per_class", "skip", why)]


def run_gate(
    gate: GateParams,
    cand: Candidate,
    champion: ChampionScore | None,
    drift: DriftFigures | None = None,
    drift_unavailable: str = "no drift figures",
) -> Decision:
    """Every check with its outcome and reason; promote only when none fails.

    The primary metric is `register.gate.primary_metric` (`resolve_primary`); a candidate of label sets
    (`cand.task` multi_label) is compared by the paired bootstrap (module docstring)."""
    cand = resolve_primary(gate, cand)
    checks = _absolute_checks(gate, cand, first=champion is None)
    names = COMPARISON_CHECKS[gate.policy]
    if champion is None:
        multi = cand.task == MULTI_LABEL_TASK
        checks.append(
            set_baseline_significance_check(gate, cand) if multi else baseline_significance_check(gate, cand)
        )
        skip = "no champion yet: the floor and the baseline decide"
        checks += [Check(n, "skip", skip) for n in ("labels", *names, "per_class", "drift")]
        return Decision(not any(c.outcome == "fail" for c in checks), checks, None, None, gate.policy)
    v = champion.version
    checks.append(
        Check("baseline_significance", "skip", f"champion v{v} exists: the comparison with it decides")
    )
    checks.append(labels_check(gate, cand, champion))
    compared, comparison = _comparison_checks(gate, cand, champion)
    checks += compared
    checks.append(drift_check(drift, gate, drift_unavailable))
    promote = all(c.outcome != "fail" for c in checks)
    return Decision(promote, checks, v, comparison, gate.policy, drift)
