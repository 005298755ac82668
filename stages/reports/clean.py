"""reports/clean.json, written by `stages/clean.py`: rows in and out, rejects and their reasons.

The summary reads only the length warnings (a length limit that removed more than
`clean.warn_class_fraction` of a class); the counts stay extras.
"""

from __future__ import annotations

from stages.reports.base import ReportModel


class LengthWarning(ReportModel):
    """One (class, length limit) warning; its label, reason and counts stay extras."""

    message: str


class CleanReport(ReportModel):
    """reports/clean.json."""

    length_warnings: list[LengthWarning]
