"""reports/report.html, written by `stages/register.py`: one run on one page, for a person to look at.

    html = render_run_page(RunPage(registry, metrics, predictions, labels, drift, datetime.now(timezone.utc)))

From the reports the run already wrote (registry.json, metrics.json, predictions.csv, drift.json) it shows
the headline (model, version, the gate's decision and the action, the date), the test metrics against the
TF-IDF baseline and the champion, the confusion matrix, the per-class figures, the calibration curve, the
drift figures and the gate's checks. Self-contained and offline (`stages/reports/html.py`); every text
from the data is escaped. Pure: the register stage reads the files and writes the page.

A label-set run (metrics.json `task: multi_label`) gets its own metrics, confusion, per-label and
calibration parts: micro-F1, subset accuracy and Hamming loss against the baseline and the champion (the
gate's paired bootstrap); the (text, label) confusion of evaluate's confusion.json, with `(none)` on the
side that lacks the label, and each label's TP/FP/FN beside its figures and threshold; the reliability
of every (text, label) probability as a binary forecast. Single-label pages are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stages.core.label_sets import MULTI_LABEL_TASK, NO_LABEL, split_set
from stages.reports.drift import DriftReport
from stages.reports.evaluate import MetricsReport
from stages.reports.html import (
    bar_chart,
    document,
    fmt,
    heatmap,
    line_chart,
    outcome,
    paragraph,
    section,
    table,
)
from stages.reports.register import RegistryReport

HEADLINE_METRICS = ("accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1", "ece")
DRIFT_FIGURES = ("label_js", "length_js", "domain_auc")


@dataclass(frozen=True)
class Prediction:
    """One test example as evaluate predicted it (a row of reports/predictions.csv)."""

    label: str  # the true class (label sets: the true set string, names joined by "|")
    pred: str
    score: float  # the probability of `pred`, the top one (label sets: the mean of the chosen labels')
    probs: tuple[float, ...] = ()  # label sets: every label's probability, in the page's `labels` order


@dataclass(frozen=True)
class RunPage:
    """What the run's page shows, each part from the report that holds it."""

    registry: RegistryReport  # reports/registry.json: the version, the action, the gate's decision
    metrics: MetricsReport  # reports/metrics.json
    predictions: Sequence[Prediction]  # reports/predictions.csv
    labels: Sequence[str]  # the classes in id order
    drift: DriftReport | None  # reports/drift.json; None when the drift stage wrote none
    generated: datetime
    calibration_bins: int = 10  # evaluate.ece_bins


def confusion_counts(preds: Sequence[Prediction], labels: Sequence[str]) -> list[list[int]]:
    """Counts per (actual, predicted), rows and columns in `labels` order (other names are left out)."""
    index = {name: i for i, name in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for p in preds:
        if p.label in index and p.pred in index:
            counts[index[p.label]][index[p.pred]] += 1
    return counts


def calibration(preds: Sequence[Prediction], bins: int) -> list[tuple[int, float | None, float | None]]:
    """Per equal-width confidence bin: (rows, accuracy, mean confidence); None for an empty bin."""
    rows: list[list[Prediction]] = [[] for _ in range(bins)]
    for p in preds:
        rows[min(int(p.score * bins), bins - 1)].append(p)
    return [
        (
            len(r),
            sum(p.label == p.pred for p in r) / len(r) if r else None,
            sum(p.score for p in r) / len(r) if r else None,
        )
        for r in rows
    ]


def _gate(page: RunPage) -> dict[str, Any]:
    """The gate's decision as stored (checks, comparison, drift), or {} without one."""
    return page.registry.gate.dump() if page.registry.gate is not None else {}


def headline(page: RunPage) -> str:
    """`<name> version <v>: promote|reject (registered|unchanged), champion <c>, <date UTC>`."""
    r = page.registry
    decision = "no gate decision" if r.gate is None else "promote" if r.gate.promote else "reject"
    return (
        f"{r.name} version {r.version}: {decision} ({r.action}), champion {r.champion or 'none'}, "
        f"{page.generated.strftime('%Y-%m-%d %H:%M %Z').strip()}"
    )


def metrics_section(page: RunPage) -> str:
    """The model's test figures beside the baseline's, and the champion's on the rows both can be judged on."""
    model, base = page.metrics.model.figures(), page.metrics.baseline.figures()
    keys = [k for k in HEADLINE_METRICS if k in model]
    rows = [[k, model[k], base.get(k), model[k] - base[k] if k in base else None] for k in keys]
    chart = bar_chart(
        "metrics",
        [k for k in keys if k != "ece"],
        {
            "model": [model[k] for k in keys if k != "ece"],
            "TF-IDF baseline": [base.get(k) for k in keys if k != "ece"],
        },
        "test metrics: model and TF-IDF baseline",
        y_max=1.0,
    )
    parts = [
        paragraph(
            f"primary metric: {page.metrics.primary_metric}; test rows: {page.metrics.dump().get('test_rows', '-')}"
        ),
        table(["metric", "model", "TF-IDF baseline", "model - baseline"], rows),
        chart,
        champion_part(page),
    ]
    return section("Metrics against the baseline and the champion", *parts)


def champion_part(page: RunPage) -> str:
    """The gate's paired comparison: the primary metric and per-class F1 of candidate and champion."""
    comp = _gate(page).get("comparison")
    if not comp:
        before = _gate(page).get("champion_before")
        why = f"champion {before} could not be compared" if before else "no champion (the first version)"
        return paragraph(f"Against the champion: {why}.")
    metric = page.metrics.primary_metric
    per_class: dict[str, dict[str, float]] = comp.get("per_class") or {}
    names = list(per_class)
    rows = [
        [
            f"{metric} (compared rows)",
            comp.get("candidate_primary"),
            comp.get("champion_primary"),
            comp.get("rows"),
        ],
        ["errors", comp.get("candidate_errors"), comp.get("champion_errors"), comp.get("rows")],
    ] + [
        [f"F1 {c}", v.get("candidate_f1"), v.get("champion_f1"), v.get("rows")] for c, v in per_class.items()
    ]
    chart = bar_chart(
        "champion",
        names,
        {
            "this version": [per_class[c].get("candidate_f1") for c in names],
            f"champion {_gate(page).get('champion_before')}": [
                per_class[c].get("champion_f1") for c in names
            ],
        },
        "per-class F1 against the champion, on the test rows it never saw",
        y_max=1.0,
    )
    note = paragraph(
        f"Against champion {_gate(page).get('champion_before')} on {comp.get('rows')} test rows it never trained "
        f"on (McNemar p {fmt(comp.get('mcnemar_p'))})."
    )
    return note + table(["figure", "this version", "champion", "rows"], rows) + chart


def confusion_section(page: RunPage) -> str:
    """The confusion matrix of the test split (rows: actual, columns: predicted)."""
    counts = confusion_counts(page.predictions, page.labels)
    chart = heatmap(
        "confusion", page.labels, page.labels, counts, "confusion matrix: actual (rows) by predicted"
    )
    return section("Confusion matrix", chart)


def per_class_chart(names: list[str], per_class: dict[str, dict[str, float]], unit: str) -> str:
    """Precision, recall and F1 of each class (`unit` "per-class") or label ("per-label") on the test split."""
    return bar_chart(
        "per_class",
        names,
        {k: [per_class[c].get(k) for c in names] for k in ("precision", "recall", "f1")},
        f"{unit} precision, recall and F1 on the test split",
        y_max=1.0,
    )


def per_class_section(page: RunPage) -> str:
    """Precision, recall, F1 and support of each class, as a table and a bar chart."""
    per_class: dict[str, dict[str, float]] = page.metrics.model.dump().get("per_class") or {}
    names = [c for c in page.labels if c in per_class] + [c for c in per_class if c not in page.labels]
    rows = [
        [
            c,
            per_class[c].get("precision"),
            per_class[c].get("recall"),
            per_class[c].get("f1"),
            per_class[c].get("support"),
        ]
        for c in names
    ]
    chart = per_class_chart(names, per_class, "per-class")
    return section("Per class", table(["class", "precision", "recall", "F1", "support"], rows), chart)


def calibration_section(page: RunPage) -> str:
    """The reliability curve: accuracy against confidence per equal-width bin (the diagonal is perfect)."""
    bins = calibration(page.predictions, page.calibration_bins)
    n = page.calibration_bins
    labels = [f"{k / n:.1f}-{(k + 1) / n:.1f}" for k in range(n)]
    chart = line_chart(
        "calibration",
        labels,
        {"accuracy": [acc for _, acc, _ in bins], "mean confidence": [conf for _, _, conf in bins]},
        "reliability: accuracy per confidence bin (dashed: perfectly calibrated)",
        diagonal=True,
    )
    ece = page.metrics.model.figures().get("ece")
    rows = [[lab, count, acc, conf] for lab, (count, acc, conf) in zip(labels, bins, strict=True) if count]
    text = f"Expected calibration error {fmt(ece)} over {n} bins; {len(page.predictions)} test rows."
    return section(
        "Calibration",
        paragraph(text),
        chart,
        table(["confidence", "rows", "accuracy", "mean confidence"], rows),
    )


def drift_section(page: RunPage) -> str:
    """The drift figures: the drift stage's (new data against the champion's) and the gate's."""
    sources: dict[str, dict[str, Any]] = {}
    if page.drift is not None:
        sources["drift stage"] = page.drift.dump()
    if _gate(page).get("drift"):
        sources["gate"] = _gate(page)["drift"]
    if not sources:
        return section("Drift", paragraph("No drift figures: no drift report and no champion profile."))
    rows = [[f, *(src.get(f) for src in sources.values())] for f in DRIFT_FIGURES]
    chart = bar_chart(
        "drift",
        list(DRIFT_FIGURES),
        {who: [src.get(f) for f in DRIFT_FIGURES] for who, src in sources.items()},
        "drift figures against the champion's data (JS distances, domain ROC AUC)",
        y_max=1.0,
    )
    notes = [paragraph(f"{who}: {n}") for who, src in sources.items() for n in src.get("notes") or []]
    parts = [table(["figure", *sources], rows), chart, *notes]
    if page.drift is not None:
        parts.insert(0, paragraph(f"drift stage: {page.drift.outcome}: {page.drift.reason}"))
    return section("Drift", *parts)


def gate_section(page: RunPage) -> str:
    """The gate's decision, its policy and each check with the reason and figures."""
    gate = page.registry.gate
    if gate is None:
        return section("Gate", paragraph("This version was registered without a stored gate decision."))
    stored = gate.dump()
    verdict = "promote to champion" if gate.promote else "stays challenger"
    head = paragraph(
        f"Decision ({stored.get('policy', '-')}): {verdict}; champion before: {stored.get('champion_before') or 'none'}; "
        f"action: {page.registry.action}; aliases: {', '.join(page.registry.aliases) or 'none'}."
    )
    rows = [
        [c.name, outcome(c.outcome), c.reason, c.dump().get("value"), c.dump().get("threshold")]
        for c in gate.checks
    ]
    return section(
        "Gate", head, table(["check", "outcome", "reason", "value", "threshold"], rows, raw_columns=[1])
    )


def render_run_page(page: RunPage) -> str:
    """The whole page, as one HTML string."""
    r = page.registry
    if page.metrics.task == MULTI_LABEL_TASK:
        parts = [
            set_metrics_section(page),
            set_confusion_section(page),
            set_per_label_section(page),
            set_calibration_section(page),
        ]
    else:
        parts = [
            metrics_section(page),
            confusion_section(page),
            per_class_section(page),
            calibration_section(page),
        ]
    return document(
        f"ftpipe run: {r.name} version {r.version}",
        headline(page),
        [*parts, drift_section(page), gate_section(page)],
    )


# --- label sets (metrics.json `task: multi_label`): a set per text, each (text, label) pair judged ---

SET_PAGE_METRICS = (
    "micro_f1",
    "subset_accuracy",
    "hamming_loss",
    "micro_precision",
    "micro_recall",
    "macro_f1",
    "weighted_f1",
    "label_cardinality",
    "ece",
)
SET_UNCHARTED = ("hamming_loss", "label_cardinality", "ece")  # lower is better, or not a share of 1


def set_confusion_counts(preds: Sequence[Prediction], labels: Sequence[str]) -> list[list[int]]:
    """The (text, label) confusion over `labels` plus `NO_LABEL` (rows: actual, columns: predicted): each
    label in a text's true or predicted set counts once, on the diagonal when both sets hold it, in the
    `NO_LABEL` column when only the truth does (missed), in the `NO_LABEL` row when only the prediction
    does; evaluate's confusion.json records, counted (other names are left out)."""
    index = {name: i for i, name in enumerate(labels)}
    none = len(labels)
    counts = [[0] * (none + 1) for _ in range(none + 1)]
    for p in preds:
        have, got = set(split_set(p.label)), set(split_set(p.pred))
        for name in (have | got) & index.keys():
            j = index[name]
            counts[j if name in have else none][j if name in got else none] += 1
    return counts


def label_counts(counts: Sequence[Sequence[int]]) -> list[tuple[int, int, int]]:
    """(TP, FP, FN) of each label from `set_confusion_counts`: its diagonal cell, its cell in the
    `NO_LABEL` row (predicted, not true) and in the `NO_LABEL` column (true, missed)."""
    none = len(counts) - 1
    return [(counts[j][j], counts[none][j], counts[j][none]) for j in range(none)]


def binary_calibration(
    preds: Sequence[Prediction], labels: Sequence[str], bins: int
) -> list[tuple[int, float | None, float | None]]:
    """Every (text, label) probability as a binary forecast, per equal-width probability bin: (pairs,
    fraction whose label is in the true set, mean probability); None for an empty bin (1.0 falls in the
    last). metrics.json's label-set `ece` is these bins' gaps weighted by their pairs. Rows without
    probabilities (`probs` empty) are left out."""
    cells: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for p in preds:
        if not p.probs:
            continue
        have = set(split_set(p.label))
        for name, prob in zip(labels, p.probs, strict=True):
            cells[min(int(prob * bins), bins - 1)].append((prob, name in have))
    return [
        (
            len(c),
            sum(hit for _, hit in c) / len(c) if c else None,
            sum(prob for prob, _ in c) / len(c) if c else None,
        )
        for c in cells
    ]


def set_metrics_section(page: RunPage) -> str:
    """Label sets: the model's test figures beside the baseline's (micro-F1 first, subset accuracy, Hamming
    loss), the labels per text, and the champion's figures on the texts both can be judged on."""
    model, base = page.metrics.model.figures(), page.metrics.baseline.figures()
    keys = [k for k in SET_PAGE_METRICS if k in model]
    rows = [[k, model[k], base.get(k), model[k] - base[k] if k in base else None] for k in keys]
    charted = [k for k in keys if k not in SET_UNCHARTED]
    chart = bar_chart(
        "metrics",
        charted,
        {"model": [model[k] for k in charted], "TF-IDF baseline": [base.get(k) for k in charted]},
        "test metrics on label sets: model and TF-IDF baseline",
        y_max=1.0,
    )
    sizes = [len(split_set(p.label)) for p in page.predictions]
    truth = sum(sizes) / len(sizes) if sizes else None
    head = paragraph(
        f"primary metric: {page.metrics.primary_metric} (label sets); test texts: "
        f"{page.metrics.dump().get('test_rows', '-')}; labels per text: true {fmt(truth, 3)}, model "
        f"{fmt(model.get('label_cardinality'), 3)}, TF-IDF baseline {fmt(base.get('label_cardinality'), 3)}. "
        "Subset accuracy: texts whose whole set is right; Hamming loss: the share of (text, label) "
        "decisions that are wrong (lower is better)."
    )
    parts = [head, table(["metric", "model", "TF-IDF baseline", "model - baseline"], rows), chart]
    return section("Metrics against the baseline and the champion", *parts, set_champion_part(page))


def _subset_accuracy(errors: object, rows: object) -> float | None:
    """1 - errors / rows: the share of compared texts whose whole set is right; None without rows."""
    if isinstance(errors, int) and isinstance(rows, int) and rows > 0:
        return 1.0 - errors / rows
    return None


def set_champion_part(page: RunPage) -> str:
    """Label sets: the gate's paired comparison (bootstrap) of candidate and champion: the primary metric,
    subset accuracy and per-label F1 on the compared texts."""
    gate = _gate(page)
    comp = gate.get("comparison")
    if not comp:
        before = gate.get("champion_before")
        why = f"champion {before} could not be compared" if before else "no champion (the first version)"
        return paragraph(f"Against the champion: {why}.")
    metric = comp.get("primary_metric") or page.metrics.primary_metric
    n = comp.get("rows")
    mine, theirs = comp.get("candidate_errors"), comp.get("champion_errors")
    per_class: dict[str, dict[str, float]] = comp.get("per_class") or {}
    rows = [
        [f"{metric} (compared texts)", comp.get("candidate_primary"), comp.get("champion_primary"), n],
        ["subset accuracy (compared texts)", _subset_accuracy(mine, n), _subset_accuracy(theirs, n), n],
        ["texts whose set is wrong", mine, theirs, n],
    ] + [
        [f"F1 {c}", v.get("candidate_f1"), v.get("champion_f1"), v.get("rows")] for c, v in per_class.items()
    ]
    chart = bar_chart(
        "champion",
        list(per_class),
        {
            "this version": [v.get("candidate_f1") for v in per_class.values()],
            f"champion {gate.get('champion_before')}": [v.get("champion_f1") for v in per_class.values()],
        },
        "per-label F1 against the champion, on the test texts it never saw",
        y_max=1.0,
    )
    note = paragraph(
        f"Against champion {gate.get('champion_before')} on {n} test texts it never trained on (paired "
        f"bootstrap, {comp.get('bootstrap_samples', '-')} resamples: {metric} difference 95% CI "
        f"{fmt(comp.get('difference_ci95_low'))} to {fmt(comp.get('difference_ci95_high'))}; p "
        f"non-inferiority {fmt(comp.get('p_noninferiority'))}, p worse {fmt(comp.get('p_worse'))}, p "
        f"superiority {fmt(comp.get('p_superiority'))})."
    )
    return note + table(["figure", "this version", "champion", "texts"], rows) + chart


def set_confusion_section(page: RunPage) -> str:
    """Label sets: the (text, label) confusion, `NO_LABEL` on the side without the label."""
    counts = set_confusion_counts(page.predictions, page.labels)
    names = [*page.labels, NO_LABEL]
    agree = sum(counts[j][j] for j in range(len(page.labels)))
    note = paragraph(
        f"Every (text, label) pair with the label in the true or the predicted set: {sum(map(sum, counts))} "
        f"pairs from {len(page.predictions)} test texts, {agree} agree. Row {NO_LABEL}: labels predicted "
        f"but not true (false positives); column {NO_LABEL}: true labels missed (false negatives)."
    )
    chart = heatmap(
        "confusion",
        names,
        names,
        counts,
        f"(text, label) pairs: actual (rows) by predicted, {NO_LABEL}: not in the set",
    )
    return section("Confusion matrix of (text, label) pairs", note, chart)


def set_per_label_section(page: RunPage) -> str:
    """Label sets: each label's precision, recall, F1, support, threshold and TP/FP/FN, as a table and bars."""
    block = page.metrics.model.dump()
    per_class: dict[str, dict[str, float]] = block.get("per_class") or {}
    thresholds: dict[str, float] = block.get("thresholds") or {}
    names = [c for c in page.labels if c in per_class] + [c for c in per_class if c not in page.labels]
    tallies = label_counts(set_confusion_counts(page.predictions, page.labels))
    by_name = dict(zip(page.labels, tallies, strict=True))
    rows = [
        [
            c,
            *(per_class[c].get(k) for k in ("precision", "recall", "f1", "support")),
            thresholds.get(c),
            *by_name.get(c, (None, None, None)),
        ]
        for c in names
    ]
    chart = per_class_chart(names, per_class, "per-label")
    note = paragraph(
        "Support: test texts carrying the label. Threshold: the probability from which the model gives the "
        "label (config.json ftpipe_thresholds, tuned on validation). TP, FP, FN: (text, label) pairs both "
        "true and predicted, predicted only, true only."
    )
    headers = ["label", "precision", "recall", "F1", "support", "threshold", "TP", "FP", "FN"]
    return section("Per label", note, table(headers, rows), chart)


def set_calibration_section(page: RunPage) -> str:
    """Label sets: the reliability of every (text, label) probability as a binary forecast."""
    n = page.calibration_bins
    bins = binary_calibration(page.predictions, page.labels, n)
    ece = page.metrics.model.figures().get("ece")
    pairs = sum(count for count, _, _ in bins)
    if not pairs:
        why = "predictions.csv holds no per-label probabilities (prob_<label>) to draw the reliability from"
        return section("Calibration", paragraph(f"Binary expected calibration error {fmt(ece)}; {why}."))
    labels = [f"{k / n:.1f}-{(k + 1) / n:.1f}" for k in range(n)]
    chart = line_chart(
        "calibration",
        labels,
        {"fraction true": [f for _, f, _ in bins], "mean probability": [m for _, _, m in bins]},
        "reliability of every (text, label) probability: fraction true per bin (dashed: perfectly calibrated)",
        diagonal=True,
    )
    rows = [[lab, count, f, m] for lab, (count, f, m) in zip(labels, bins, strict=True) if count]
    text = (
        f"Binary expected calibration error {fmt(ece)} over {n} bins: every (text, label) probability taken "
        f"as the forecast that the text carries the label, {pairs} pairs from {len(page.predictions)} test "
        "texts (the decisions and their thresholds play no part)."
    )
    return section(
        "Calibration",
        paragraph(text),
        chart,
        table(["probability", "pairs", "fraction true", "mean probability"], rows),
    )
