"""reports/clean.json, written by `stages/clean.py`: rows in and out, rejects and their reasons, duplicates.

The summary reads the length warnings (a length limit that removed more than `clean.warn_class_fraction`
of a class) and may show the row counts: `rows_in` = `rows_out` + `rejected` + `duplicates`. Only
`rejected` counts against `clean.max_reject_fraction`; `duplicates` are exact copies of a kept row,
dropped (and quarantined with reason `duplicate`). The counts are None in a report written before
duplicates were counted apart (there `rejected` included them). The other counts stay extras.
"""

from __future__ import annotations

from stages.reports.base import ReportModel


class LengthWarning(ReportModel):
    """One (class, length limit) warning; its label, reason and counts stay extras."""

    message: str


class CleanReport(ReportModel):
    """reports/clean.json."""

    length_warnings: list[LengthWarning]
    rows_in: int | None = None
    rows_out: int | None = None
    rejected: int | None = None  # unusable rows and copies with conflicting labels
    duplicates: int | None = None  # exact copies of a kept row, dropped; None: an older report
