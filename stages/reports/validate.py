"""reports/data_profile.json, written by `stages/validate.py`: the data's profile and integrity checks.

A big report; the summary reads only the headline and each check's outcome and message, so only those
are typed. The per-split, per-class and per-batch figures and the top n-grams stay extras.
"""

from __future__ import annotations

from stages.reports.base import ReportModel


class ProfileHeadline(ReportModel):
    """The figures a run summary shows (`stages.validate.headline`)."""

    passed: bool
    checks: int  # how many checks ran
    failed: int
    rows: dict[str, int]  # per split
    batches: int
    median_chars: float | None  # train split; None when it is empty
    median_tokens: float | None
    truncated_share: float
    unk_share: float


class ProfileCheck(ReportModel):
    """One integrity check; its name, subject, figure and limit stay extras."""

    outcome: str  # pass | fail
    message: str  # empty when it passed


class DataProfileReport(ReportModel):
    """reports/data_profile.json."""

    headline: ProfileHeadline
    checks: list[ProfileCheck]
