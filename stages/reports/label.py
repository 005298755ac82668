"""reports/label.json, written by `stages/label.py`: the split, its class balance and what moved.

The summary reads only the movement since the previous run; rows, class counts and shares, and the
quarantine counts stay extras.
"""

from __future__ import annotations

from stages.reports.base import ReportModel


class LabelMovement(ReportModel):
    """Rows new and rows that changed side per split, rows removed. All three are absent when there was
    no previous run (`previous_run: false`, an extra)."""

    new: dict[str, int] | None = None
    changed_side: dict[str, int] | None = None
    removed: int | None = None


class LabelReport(ReportModel):
    """reports/label.json."""

    movement: LabelMovement
