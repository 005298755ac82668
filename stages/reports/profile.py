"""data/processed/profile.json, written by `stages/validate.py`: the compact data profile drift compares.

    profile = DataProfile.model_validate(read_json("data/processed/profile.json"))
    parsed = as_profile(stored)     # a DataProfile, or why a stored profile cannot be compared

register stores it with every model version; the drift stage and the gate compare a new one with the
champion's (`stages.data.drift.compare_profiles`), which reads the train class counts, the token-length
bins and histograms, and the sample's ids, groups and texts. The fields are declared in key order (the
order `write_json` sorts them into), so a profile read from its file and dumped again lists its keys
as before, also where MLflow logs it without sorting.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from stages.reports.base import ReportModel, problems

PROFILE_FORMAT = 1
CUT = "cut"  # windows_hist's key of the texts longer than their windows hold (read as the most windows)
COMPARED = ("class_counts", "length_bins", "length_hist", "sample")  # what drift cannot do without


class ProfileSample(ReportModel):
    """One sample row: a train or validation text (cut to `validate.sample_chars`) and where it is from."""

    group: str
    id: str
    label: str | list[str]  # label.task multi_label: the row's label set
    split: str
    text: str


class LabelSets(ReportModel):
    """Label sets (label.task multi_label): per split, labels per text (mean, median, max, and `hist`,
    rows per count "1", "2", ...); the train split's most frequent label pairs (labels, rows, share)."""

    cardinality: dict[str, dict[str, Any]]  # split -> mean | median | max | hist
    top_pairs: list[dict[str, Any]]


class DataProfile(ReportModel):
    """data/processed/profile.json (format 1): per split rows and class counts, fixed-bin length
    histograms (`chars`, `tokens`), a stable sample of train/validation rows and, since the monitor compares
    served traffic with them, the windows per text and the unknown-token share (None in older profiles)."""

    class_counts: dict[str, dict[str, int]]  # split -> class -> rows
    classes: list[str] | None = None  # names in id order; drift does not read them
    format: int
    label_sets: LabelSets | None = None  # label.task multi_label only
    length_bins: dict[str, list[int]]  # chars | tokens -> bin edges
    length_hist: dict[str, dict[str, list[int]]]  # chars | tokens -> split -> counts per bin
    rows: dict[str, int] | None = None  # per split; drift does not read them
    sample: list[ProfileSample]
    unk_share: dict[str, float] | None = None  # split -> unknown tokens / tokens (special tokens included)
    windows_hist: dict[str, dict[str, int]] | None = (
        None  # split -> windows a text is read as ("cut") -> rows
    )


def windows_key(windows: int, truncated: bool) -> str:
    """`windows_hist`'s key of a text read as `windows` windows: that number, or `cut` when it was longer
    than they hold. The validate stage counts the training data and `ftpipe monitor` served rows with it."""
    return CUT if truncated else str(int(windows))


def as_profile(raw: object) -> DataProfile | str:
    """`raw` (a profile as stored, by any ftpipe version) as a comparable profile, or why it is not one."""
    if isinstance(raw, DataProfile):
        return raw if raw.format == PROFILE_FORMAT else _format_problem(raw.format)
    if not isinstance(raw, dict):
        return f"not a profile (a {type(raw).__name__})"
    if raw.get("format") != PROFILE_FORMAT:
        return _format_problem(raw.get("format"))
    missing = [k for k in COMPARED if k not in raw]
    if missing:
        return f"profile lacks {', '.join(missing)}"
    try:
        return DataProfile.model_validate(raw)
    except ValidationError as exc:
        return f"profile is malformed ({problems(exc)})"


def profile_problem(raw: object) -> str | None:
    """Why `raw` cannot be compared; None when it can."""
    parsed = as_profile(raw)
    return parsed if isinstance(parsed, str) else None


def _format_problem(found: object) -> str:
    return f"profile format {found!r}, this ftpipe reads {PROFILE_FORMAT}"
