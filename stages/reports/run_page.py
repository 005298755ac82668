"""reports/report.html, written by `stages/register.py`: one run on one page, for a person to look at.

    html = render_run_page(RunPage(registry, metrics, predictions, labels, drift, datetime.now(timezone.utc)))

From the reports the run already wrote (registry.json, metrics.json, predictions.csv, drift.json) it shows
the headline (model, version, the gate's decision and the action, the date), the test metrics against the
TF-IDF baseline and the champion, the confusion matrix, the per-class figures, the calibration curve, the
drift figures and the gate's checks. Self-contained and offline (`stages/reports/html.py`); every text
from the data is escaped. Pure: the register stage reads the files and writes the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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

    label: str  # the true class
    pred: str
    score: float  # the probability of `pred`, the top one


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
    chart = bar_chart(
        "per_class",
        names,
        {k: [per_class[c].get(k) for c in names] for k in ("precision", "recall", "f1")},
        "per-class precision, recall and F1 on the test split",
        y_max=1.0,
    )
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
    return document(
        f"ftpipe run: {r.name} version {r.version}",
        headline(page),
        [
            metrics_section(page),
            confusion_section(page),
            per_class_section(page),
            calibration_section(page),
            drift_section(page),
            gate_section(page),
        ],
    )
