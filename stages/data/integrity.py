"""validate's integrity checks: a class missing or too small in a split, unreadable or cut texts, a bad batch.

    profile, compact = validate(frames, classes, params)   # compact is None when a check failed
    raise ValidateError(failure_message(profile, "reports/data_profile.json"))

Each check has its figure, its limit and its outcome; a failed one names the class, split or batch file,
the figure and the `validate.*` (or `label.*`) key to change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from stages.config.validate import ValidateParams
from stages.data.profile import SPLITS, build_profile, compact_profile
from stages.reports.profile import DataProfile


class ValidateError(ValueError):
    """The data failed an integrity check; the message names each problem and the key to change."""


def _check(name: str, subject: str, figure: float, limit: float, ok: bool, message: str) -> dict[str, Any]:
    return {
        "check": name,
        "subject": subject,
        "figure": figure,
        "limit": limit,
        "outcome": "pass" if ok else "fail",
        "message": "" if ok else message,
    }


def run_checks(profile: dict[str, Any], p: ValidateParams) -> list[dict[str, Any]]:
    """Every integrity check, passed or failed, with its figure and limit."""
    checks = []
    for c in profile["classes"]:
        total = sum(profile["splits"][s]["classes"][c]["rows"] for s in SPLITS)
        checks.append(
            _check(
                "class_present",
                c,
                total,
                1,
                total > 0,
                f"class `{c}` is in labels.json (named by `label.labels`) but no row has it: the data no "
                f"longer holds that class. Add data for `{c}` or remove it from `label.labels`.",
            )
        )
        if total == 0:
            continue
        for s in SPLITS:
            fig = profile["splits"][s]["classes"][c]
            where = f"class `{c}` in the {s} split"
            checks.append(
                _check(
                    "min_rows_per_split",
                    f"{c}/{s}",
                    fig["rows"],
                    p.min_rows_per_split,
                    fig["rows"] >= p.min_rows_per_split,
                    f"{where} has {fig['rows']} rows, below validate.min_rows_per_split = "
                    f"{p.min_rows_per_split}. Add data for `{c}`, or lower the key if so few rows are enough.",
                )
            )
            if fig["rows"] == 0:
                continue
            checks.append(
                _check(
                    "max_unk_share",
                    f"{c}/{s}",
                    fig["unk_share"],
                    p.max_unk_share,
                    fig["unk_share"] <= p.max_unk_share,
                    f"{where}: {fig['unk_share']:.1%} of its tokens are unknown to the tokenizer, above "
                    f"validate.max_unk_share = {p.max_unk_share}. Is it in a language or script the model "
                    "cannot read? Fix the source, pick another `tokenize.model`, or raise the key.",
                )
            )
            median = fig["chars"].get("p50", 0.0)
            checks.append(
                _check(
                    "min_median_chars",
                    f"{c}/{s}",
                    median,
                    p.min_median_chars,
                    median >= p.min_median_chars,
                    f"{where}: median text length {median:.0f} characters, below validate.min_median_chars "
                    f"= {p.min_median_chars}. Were the texts cut by the export? Fix the source or lower the key.",
                )
            )
    checks.extend(batch_checks(profile["batches"], p))
    return checks


def batch_checks(batches: dict[str, dict[str, Any]], p: ValidateParams) -> list[dict[str, Any]]:
    """A batch file whose texts are far shorter than the others' is a broken export, even when it is too
    small a share of the data to move any split's median."""
    checks: list[dict[str, Any]] = []
    if len(batches) < 2:
        return checks
    for file, fig in batches.items():
        if fig["rows"] < p.min_batch_rows:
            continue
        others = [b["median_chars"] for f, b in batches.items() if f != file]
        ref = float(np.median(others))
        ratio = round(fig["median_chars"] / ref, 4) if ref else 1.0
        checks.append(
            _check(
                "min_batch_median_ratio",
                file,
                ratio,
                p.min_batch_median_ratio,
                ratio >= p.min_batch_median_ratio,
                f"batch file `{file}`: median text length {fig['median_chars']:.0f} characters, {ratio:.2f} of "
                f"the other files' median ({ref:.0f}), below validate.min_batch_median_ratio = "
                f"{p.min_batch_median_ratio}. Were its texts cut by the export? Fix or remove the file, or "
                "lower the key.",
            )
        )
    return checks


def headline(profile: dict[str, Any], checks: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures a run summary shows."""
    failed = [c for c in checks if c["outcome"] == "fail"]
    train = profile["splits"]["train"]["all"]
    return {
        "passed": not failed,
        "checks": len(checks),
        "failed": len(failed),
        "rows": profile["rows"],
        "batches": len(profile["batches"]),
        "median_chars": train["chars"].get("p50"),
        "median_tokens": train["tokens"].get("p50"),
        "truncated_share": train["truncated_share"],
        "unk_share": train["unk_share"],
    } | _cardinality(profile)


def _cardinality(profile: dict[str, Any]) -> dict[str, Any]:
    """Label sets only (label.task multi_label): the train split's mean labels per text."""
    if "label_sets" not in profile:
        return {}
    return {"label_cardinality": profile["label_sets"]["cardinality"]["train"]["mean"]}


def validate(
    frames: dict[str, pd.DataFrame], classes: list[str], p: ValidateParams
) -> tuple[dict[str, Any], DataProfile | None]:
    """Return (the full profile with checks and headline, the compact profile or None when a check failed)."""
    profile = build_profile(frames, classes, p)
    checks = run_checks(profile, p)
    profile["checks"] = checks
    profile["headline"] = headline(profile, checks)
    compact = compact_profile(frames, classes, p) if profile["headline"]["passed"] else None
    return profile, compact


def failure_message(profile: dict[str, Any], report: str) -> str:
    failed = [c["message"] for c in profile["checks"] if c["outcome"] == "fail"]
    head = f"validate: {len(failed)} integrity check(s) failed, so nothing was trained (profile: {report}):"
    return "\n".join([head, *(f"- {m}" for m in failed)])
