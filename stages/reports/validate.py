"""reports/data_profile.json, written by `stages/validate.py`: the data's profile and integrity checks.

A big report; the summary reads only the headline and each check's outcome and message, and the model
card the headline and the rows of each class of each split, so only those are typed. The other per-split
and per-class figures, the per-batch figures and the top n-grams stay extras.
"""

from __future__ import annotations

from stages.reports.base import ReportModel


class ProfileHeadline(ReportModel):
    """The figures a run summary shows (`stages.data.integrity.headline`)."""

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


class ClassSlice(ReportModel):
    """One class of one split; the model card reads its rows (lengths, shares and rates stay extras)."""

    rows: int


class SplitProfile(ReportModel):
    """One split's figures; the model card reads its classes (the split as a whole stays an extra)."""

    classes: dict[str, ClassSlice]


class DataProfileReport(ReportModel):
    """reports/data_profile.json."""

    headline: ProfileHeadline
    checks: list[ProfileCheck]
    splits: dict[str, SplitProfile] | None = None  # the model card's class counts; None: not read
