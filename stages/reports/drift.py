"""reports/drift.json, written by `stages/drift.py`: the new data against the champion's.

The summary reads the outcome, its reason and the champion compared with; the figures, notes and
params stay extras.
"""

from __future__ import annotations

from stages.reports.base import ReportModel


class DriftReport(ReportModel):
    """reports/drift.json."""

    outcome: str  # pass | warn | fail | skip
    reason: str
    champion: str | None  # the champion's version; None when there was none to compare with
