"""validate's data profile: per split and class figures, per batch file, top n-grams, and the compact profile.

    frames = load_frames("data/processed/splits")                  # {split: DataFrame}, labels as names
    profile = build_profile(frames, classes, params)               # reports/data_profile.json's figures
    compact = compact_profile(frames, classes, params)             # data/processed/profile.json

The full profile is for a person (text lengths in characters and tokens, truncation and unknown-token
shares, near duplicates, batch files, n-grams); the compact one is what register stores with a model
version and drift compares (`stages.reports.profile.DataProfile`): fixed histogram bins and a sample that
changes as little as the data does. The checks on the full profile are in `stages/data/integrity.py`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from datasets import load_from_disk
from datasets.features import List
from sklearn.feature_extraction.text import CountVectorizer

from stages.config.validate import ValidateParams
from stages.data.label_profile import each_label, has_label, is_multi, label_set_profile
from stages.reports.profile import PROFILE_FORMAT, DataProfile, windows_key

SPLITS = ("train", "validation", "test")
# Fixed, log-spaced bin edges so histograms of different runs compare bin for bin (the last edge is a cap).
CHAR_BINS = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 10**9]
TOKEN_BINS = [0, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10**9]
QUANTILES = (5, 25, 50, 75, 95)


def load_frames(splits_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The labelled splits as DataFrames with the label as its name (a label set: a list of names),
    without the token ids."""
    dd = load_from_disk(str(splits_dir))
    out = {}
    for name in SPLITS:
        ds = dd[name]
        feature = ds.features["label"]
        multi = isinstance(feature, List)  # label.task multi_label: a list of class ids per row
        names = feature.feature.names if multi else feature.names
        keep = [c for c in ds.column_names if c not in ("windows", "window_type_ids", "input_ids")]
        keep = [c for c in keep if c not in ("attention_mask", "token_type_ids")]
        df = ds.select_columns(keep).to_pandas()
        df["label"] = [[names[i] for i in s] if multi else names[s] for s in df["label"]]
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
        mask = has_label(labels, c).to_numpy()
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
            # a row counts once for each label of its set
            "classes": {k: int(v) for k, v in each_label(part["label"]).value_counts().sort_index().items()},
            "median_chars": float(part["text"].str.len().median()),
        }
    return out


def bottom_k_sample(frames: dict[str, pd.DataFrame], k: int, chars: int) -> list[dict[str, str | list[str]]]:
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
            "label": str(r.label) if isinstance(r.label, str) else list(r.label),
            "text": r.text[:chars],
        }
        for r in df.itertuples()
    ]


def build_profile(frames: dict[str, pd.DataFrame], classes: list[str], p: ValidateParams) -> dict[str, Any]:
    """The full profile (per split, per class, per batch file, top n-grams)."""
    group_sizes = Counter(g for df in frames.values() for g in df["group"])
    splits = {}
    for name, df in frames.items():
        per_class = {c: describe(df[has_label(df["label"], c)], group_sizes) for c in classes}
        splits[name] = {"all": describe(df, group_sizes), "classes": per_class}
    train = frames["train"]
    out = {
        "classes": classes,
        "rows": {k: len(v) for k, v in frames.items()},
        "splits": splits,
        "batches": batch_profile(frames),
        "top_ngrams": top_ngrams(train["text"], train["label"], classes, p.top_ngrams),
    }
    if is_multi(train["label"]):  # label sets: labels per text and the pairs seen together
        out["label_sets"] = label_set_profile(frames)
    return out


def windows_counts(n_windows: pd.Series, truncated: pd.Series) -> dict[str, int]:
    """Rows per number of windows a text is read as, the truncated ones apart under `cut` (`windows_key`,
    with which `ftpipe monitor` counts served rows)."""
    keys = Counter(windows_key(int(w), bool(t)) for w, t in zip(n_windows, truncated, strict=True))
    return dict(sorted(keys.items()))


def token_figures(frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Per split, the unknown-token share and the windows histogram; {} where the tokenize stage's columns
    (n_tokens, n_unk, n_windows, truncated) are missing."""
    needed = ("n_tokens", "n_unk", "n_windows", "truncated")
    if not all(c in df for df in frames.values() for c in needed):
        return {}
    return {
        "unk_share": {
            k: round(int(v["n_unk"].sum()) / max(int(v["n_tokens"].sum()), 1), 6) for k, v in frames.items()
        },
        "windows_hist": {k: windows_counts(v["n_windows"], v["truncated"]) for k, v in frames.items()},
    }


def compact_label_sets(frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The compact profile's `label_sets` (label.task multi_label only: {} for one label per row): per
    split, the cardinality; for train, the top co-occurring pairs. `class_counts` then counts, per
    label, the rows whose set holds it."""
    if not is_multi(frames["train"]["label"]):
        return {}
    sets = label_set_profile(frames)
    return {"label_sets": {"cardinality": sets["cardinality"], "top_pairs": sets["top_pairs"]["train"]}}


def compact_profile(frames: dict[str, pd.DataFrame], classes: list[str], p: ValidateParams) -> DataProfile:
    """What register stores with a model version: small, stable across reruns, enough to measure drift
    (and for `ftpipe monitor`, the windows per text and the unknown-token share)."""

    def hist(values: pd.Series, edges: list[int]) -> list[int]:
        return [int(x) for x in np.histogram(np.clip(values.to_numpy(), 0, edges[-1] - 1), bins=edges)[0]]

    return DataProfile.model_validate(
        {
            "format": PROFILE_FORMAT,
            "classes": classes,
            "rows": {k: len(v) for k, v in frames.items()},
            "class_counts": {
                k: {c: int(has_label(v["label"], c).sum()) for c in classes} for k, v in frames.items()
            },
            **compact_label_sets(frames),
            "length_bins": {"chars": CHAR_BINS, "tokens": TOKEN_BINS},
            "length_hist": {
                "chars": {k: hist(v["text"].str.len(), CHAR_BINS) for k, v in frames.items()},
                "tokens": {k: hist(v["n_tokens"], TOKEN_BINS) for k, v in frames.items()},
            },
            "sample": bottom_k_sample(frames, p.sample_size, p.sample_chars),
            **token_figures(frames),
        }
    )
