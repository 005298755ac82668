"""validate: profile the splits and stop the DAG before training when the data is broken.

    python -m stages.validate --splits data/processed/splits --labels data/processed/labels.json \
        --profile data/processed/profile.json --report reports/data_profile.json

Half an hour of training should not be the first thing to notice that a batch lost a class, that its
texts were cut to a few characters by a broken export, or that it is in a language the tokenizer cannot
read. This stage reads only the pipeline's own data (the labelled splits and labels.json), never the
registry, and writes:

- `reports/data_profile.json`: per split and class, rows, text length quantiles in characters and
  tokens, the share of texts truncated, the share of unknown tokens, the empty and near-duplicate rates
  and the top n-grams; per batch file, rows and median length; and every integrity check with its figure,
  its limit and its outcome. It is written even when a check fails, so the failure can be read.
- `data/processed/profile.json`, only when every check passes: the compact profile that register stores
  with each model version (class counts, length histograms on fixed bins, a stable sample of texts) so a
  later run can measure drift against the champion's data.

A failing check stops the stage with one message per problem naming the class, split or batch file, the
figure and the `validate.*` (or `label.*`) key to change.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from datasets import load_from_disk
from sklearn.feature_extraction.text import CountVectorizer

from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.config.validate import ValidateParams
from stages.core.io import read_json, write_json
from stages.core.logs import setup_logging
from stages.reports.validate import DataProfileReport

SPLITS = ("train", "validation", "test")
PROFILE_FORMAT = 1
# Fixed, log-spaced bin edges so histograms of different runs compare bin for bin (the last edge is a cap).
CHAR_BINS = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 10**9]
TOKEN_BINS = [0, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10**9]
QUANTILES = (5, 25, 50, 75, 95)


class ValidateError(ValueError):
    """The data failed an integrity check; the message names each problem and the key to change."""


def load_frames(splits_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The labelled splits as DataFrames with the label as its name, without the token ids."""
    dd = load_from_disk(str(splits_dir))
    out = {}
    for name in SPLITS:
        ds = dd[name]
        names = ds.features["label"].names
        keep = [c for c in ds.column_names if c not in ("windows", "window_type_ids", "input_ids")]
        keep = [c for c in keep if c not in ("attention_mask", "token_type_ids")]
        df = ds.select_columns(keep).to_pandas()
        df["label"] = [names[i] for i in df["label"]]
        out[name] = df
    return out


def _quantiles(values: pd.Series) -> dict[str, float]:
    if values.empty:
        return {}
    q = np.percentile(values.to_numpy(dtype=float), QUANTILES)
    return {f"p{p}": round(float(v), 1) for p, v in zip(QUANTILES, q, strict=True)} | {
        "mean": round(float(values.mean()), 1)
    }


def describe(df: pd.DataFrame, group_sizes: Counter[str]) -> dict[str, Any]:
    """The figures of one slice (a split, or one class of a split)."""
    chars = df["text"].str.len()
    tokens = df["n_tokens"] if "n_tokens" in df else pd.Series(dtype=float)
    unk = int(df["n_unk"].sum()) if "n_unk" in df else 0
    return {
        "rows": len(df),
        "chars": _quantiles(chars),
        "tokens": _quantiles(tokens),
        "truncated_share": round(float(df["truncated"].mean()), 4) if "truncated" in df and len(df) else 0.0,
        "unk_share": round(unk / max(int(tokens.sum()), 1), 5),
        "empty_share": round(float((chars == 0).mean()), 4) if len(df) else 0.0,
        "near_duplicate_share": round(float(df["group"].map(group_sizes).gt(1).mean()), 4)
        if len(df)
        else 0.0,
    }


def top_ngrams(texts: pd.Series, labels: pd.Series, classes: list[str], n: int) -> dict[str, list[str]]:
    """The `n` most frequent word 1-2-grams of each class (English stop words left out)."""
    if n == 0 or texts.empty:
        return {c: [] for c in classes}
    vec = CountVectorizer(ngram_range=(1, 2), stop_words="english", min_df=2, max_features=50_000)
    try:
        counts = vec.fit_transform(texts)
    except ValueError:  # nothing left after stop words and min_df
        return {c: [] for c in classes}
    vocab = vec.get_feature_names_out()
    out = {}
    for c in classes:
        mask = (labels == c).to_numpy()
        totals = np.asarray(counts[mask].sum(axis=0)).ravel() if mask.any() else np.zeros(len(vocab))
        order = sorted(range(len(vocab)), key=lambda i: (-totals[i], vocab[i]))[:n]
        out[c] = [str(vocab[i]) for i in order if totals[i] > 0]
    return out


def batch_profile(frames: dict[str, pd.DataFrame]) -> dict[str, dict[str, Any]]:
    """Rows, rows per split, classes and median length of each batch (the `batch` column from ingest:
    one file of a batch folder or glob; a single-file or folder-of-classes source is one batch)."""
    rows = [df[["batch", "label", "text"]].assign(split=name) for name, df in frames.items() if "batch" in df]
    if not rows:
        return {}
    all_rows = pd.concat(rows, ignore_index=True)
    all_rows["batch"] = all_rows["batch"].fillna("")
    out = {}
    for file, part in all_rows.groupby("batch", sort=True):
        out[str(file)] = {
            "rows": len(part),
            "splits": {k: int(v) for k, v in part["split"].value_counts().sort_index().items()},
            "classes": {k: int(v) for k, v in part["label"].value_counts().sort_index().items()},
            "median_chars": float(part["text"].str.len().median()),
        }
    return out


def bottom_k_sample(frames: dict[str, pd.DataFrame], k: int, chars: int) -> list[dict[str, str]]:
    """The `k` train/validation rows whose id hashes lowest: as data grows, a row stays in the sample
    until `k` rows hash lower, so the sample changes as little as the data does."""
    parts = [frames[s][["id", "group", "label", "text"]].assign(split=s) for s in ("train", "validation")]
    df = pd.concat(parts, ignore_index=True)
    if df.empty or k == 0:
        return []
    df["_h"] = [hashlib.blake2b(str(i).encode(), digest_size=8).hexdigest() for i in df["id"]]
    df = df.sort_values(["_h", "id"]).head(k)
    return [
        {
            "id": str(r.id),
            "group": str(r.group),
            "split": str(r.split),
            "label": str(r.label),
            "text": r.text[:chars],
        }
        for r in df.itertuples()
    ]


def build_profile(frames: dict[str, pd.DataFrame], classes: list[str], p: ValidateParams) -> dict[str, Any]:
    """The full profile (per split, per class, per batch file, top n-grams)."""
    group_sizes = Counter(g for df in frames.values() for g in df["group"])
    splits = {}
    for name, df in frames.items():
        per_class = {c: describe(df[df["label"] == c], group_sizes) for c in classes}
        splits[name] = {"all": describe(df, group_sizes), "classes": per_class}
    train = frames["train"]
    return {
        "classes": classes,
        "rows": {k: len(v) for k, v in frames.items()},
        "splits": splits,
        "batches": batch_profile(frames),
        "top_ngrams": top_ngrams(train["text"], train["label"], classes, p.top_ngrams),
    }


def compact_profile(frames: dict[str, pd.DataFrame], classes: list[str], p: ValidateParams) -> dict[str, Any]:
    """What register stores with a model version: small, stable across reruns, enough to measure drift."""

    def hist(values: pd.Series, edges: list[int]) -> list[int]:
        return [int(x) for x in np.histogram(np.clip(values.to_numpy(), 0, edges[-1] - 1), bins=edges)[0]]

    return {
        "format": PROFILE_FORMAT,
        "classes": classes,
        "rows": {k: len(v) for k, v in frames.items()},
        "class_counts": {k: {c: int((v["label"] == c).sum()) for c in classes} for k, v in frames.items()},
        "length_bins": {"chars": CHAR_BINS, "tokens": TOKEN_BINS},
        "length_hist": {
            "chars": {k: hist(v["text"].str.len(), CHAR_BINS) for k, v in frames.items()},
            "tokens": {k: hist(v["n_tokens"], TOKEN_BINS) for k, v in frames.items()},
        },
        "sample": bottom_k_sample(frames, p.sample_size, p.sample_chars),
    }


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
    }


def validate(
    frames: dict[str, pd.DataFrame], classes: list[str], p: ValidateParams
) -> tuple[dict[str, Any], dict[str, Any] | None]:
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "validate")
    args = ap.parse_args(argv)
    log = setup_logging("validate")
    p = load_section("validate", ValidateParams, args.params)
    labels = read_json(args.labels)
    classes = [labels[k] for k in sorted(labels, key=int)]
    profile, compact = validate(load_frames(args.splits), classes, p)
    Path(args.profile).unlink(missing_ok=True)  # never leave an old profile beside a failed check
    write_json(args.report, DataProfileReport.model_validate(profile).dump())  # the summary reads it
    if compact is None:
        raise ValidateError(failure_message(profile, args.report))
    write_json(args.profile, compact)
    log.info("profile: %s", profile["headline"])


if __name__ == "__main__":
    main()
