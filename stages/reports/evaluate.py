"""reports/metrics.json, written by `stages/evaluate.py`: the model's and the baseline's test figures.

The summary reads the primary metric's name and every top-level figure of the model and the baseline,
and their difference; the per-class figures, inference speed and test rows stay extras. A label-set run
(`task: multi_label`) adds micro-F1, subset accuracy, Hamming loss and each block's `thresholds` table.
"""

from __future__ import annotations

from stages.reports.base import ReportModel


class MetricFigures(ReportModel):
    """One classifier's test figures: accuracy and macro-F1 always, any other figure as an extra
    (precision, recall, weighted F1, ECE) and the `per_class` table."""

    accuracy: float
    macro_f1: float

    def figures(self) -> dict[str, int | float]:
        """Every top-level number, by name (not the per-class table)."""
        return {
            k: v for k, v in self.dump().items() if isinstance(v, int | float) and not isinstance(v, bool)
        }


class MetricsReport(ReportModel):
    """reports/metrics.json."""

    primary_metric: str
    task: str | None = None  # "multi_label" for label sets; single-label files leave it out
    model: MetricFigures
    baseline: MetricFigures
    delta: dict[str, float] | None = None  # model minus baseline (evaluate writes three of them)
