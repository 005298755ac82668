"""label: canonicalise labels, quarantine unknown ones, write labels.json and a stratified, seeded split.

    python -m stages.label --tokenized data/processed/tokenized --out data/processed/splits \
        --labels data/processed/labels.json --quarantine reports/label_quarantine.jsonl --report reports/label.json

Labels are case- and whitespace-folded and mapped through `label.aliases`; when `label.labels` is set,
rows with any other label are quarantined (with the reason and the count in the report). The split is
stratified by label and seeded, and keeps every near-duplicate group (the `group` key from clean) on one
side, so no text can sit in train and test at once.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from typing import Any

import pandas as pd
from pydantic import Field, model_validator

from stages.common.io import atomic_dir, write_json, write_jsonl
from stages.common.logs import setup_logging
from stages.common.params import StageParams, load_section

SPLITS = ("train", "validation", "test")


class LabelParams(StageParams):
    """The `label` section of params.yaml."""

    labels: list[str] | None = Field(None, description="keep only these (canonical) labels; all if unset")
    aliases: dict[str, str] = Field(default_factory=dict, description="alias -> canonical label")
    lowercase: bool = True
    validation_size: float = Field(0.15, gt=0.0, lt=1.0)
    test_size: float = Field(0.15, gt=0.0, lt=1.0)
    min_class_rows: int = Field(10, ge=3, description="fewest rows a class needs to be stratified")
    seed: int = 42

    @model_validator(mode="after")
    def _sizes(self) -> LabelParams:
        if self.validation_size + self.test_size >= 0.9:
            raise ValueError(
                f"validation_size + test_size = {self.validation_size + self.test_size:.2f} leaves "
                "under 10% for training; keep their sum below 0.9"
            )
        return self


class LabelError(ValueError):
    """The labels cannot be split; the message names the class and its count."""


_WS = re.compile(r"\s+")


def canonical(label: str, p: LabelParams) -> str:
    """Fold whitespace (and case), then map through the aliases (whose keys are folded the same way)."""
    folded = _WS.sub(" ", str(label)).strip()
    if p.lowercase:
        folded = folded.lower()
    aliases = {
        _WS.sub(" ", k).strip().lower() if p.lowercase else _WS.sub(" ", k).strip(): v
        for k, v in p.aliases.items()
    }
    return aliases.get(folded, folded)


def canonicalise(df: pd.DataFrame, p: LabelParams) -> tuple[pd.DataFrame, list[dict[str, Any]], list[str]]:
    """Return (kept rows with canonical labels, quarantined rows, sorted label names)."""
    df = df.copy()
    df["label"] = [canonical(x, p) for x in df["label"]]
    allowed = None if p.labels is None else {canonical(x, p) for x in p.labels}
    bad = df["label"].eq("") | (~df["label"].isin(allowed) if allowed is not None else False)
    quarantine = [
        {
            "id": r["id"],
            "label": r["label"],
            "reason": "empty label" if not r["label"] else "label not in label.labels",
            "text": r["text"][:200],
        }
        for r in df[bad].to_dict(orient="records")
    ]
    kept = df[~bad].reset_index(drop=True)
    names = sorted(kept["label"].unique())
    if len(names) < 2:
        raise LabelError(
            f"label: {len(names)} class(es) left ({', '.join(names) or 'none'}); classification needs at "
            "least two. Check `label.labels` and `label.aliases` against the data's labels."
        )
    counts = Counter(kept["label"])
    small = {k: n for k, n in counts.items() if n < p.min_class_rows}
    if small:
        desc = ", ".join(f"`{k}` has {n}" for k, n in sorted(small.items()))
        raise LabelError(
            f"label: too few rows to stratify: {desc} (label.min_class_rows = {p.min_class_rows}). Add data, "
            "merge the class through `label.aliases`, or drop it with `label.labels`."
        )
    return kept, quarantine, names


def split_groups(df: pd.DataFrame, p: LabelParams) -> dict[str, pd.DataFrame]:
    """Stratified, seeded train/validation/test split over `group`s, so a group never straddles splits."""
    from sklearn.model_selection import train_test_split

    groups = df.groupby("group", sort=True)["label"].agg(lambda s: s.value_counts().index[0])
    g_ids, g_labels = groups.index.to_numpy(), groups.to_numpy()
    try:
        rest, test = train_test_split(g_ids, test_size=p.test_size, stratify=g_labels, random_state=p.seed)
        rest_labels = groups.loc[rest].to_numpy()
        val_share = p.validation_size / (1.0 - p.test_size)
        train, val = train_test_split(rest, test_size=val_share, stratify=rest_labels, random_state=p.seed)
    except ValueError as exc:
        counts = Counter(g_labels)
        raise LabelError(
            f"label: cannot stratify the split ({exc}); groups per class: {dict(counts)}. Raise "
            "label.min_class_rows, add data or change validation_size/test_size."
        ) from None
    return {
        name: df[df["group"].isin(set(ids))].reset_index(drop=True)
        for name, ids in zip(SPLITS, (train, val, test), strict=True)
    }


def label_report(
    splits: dict[str, pd.DataFrame], names: list[str], quarantine: list[dict[str, Any]], p: LabelParams
) -> dict[str, Any]:
    return {
        "classes": names,
        "seed": p.seed,
        "rows": {k: len(v) for k, v in splits.items()},
        "class_counts": {k: {n: int((v["label"] == n).sum()) for n in names} for k, v in splits.items()},
        "quarantined": len(quarantine),
        "quarantined_labels": dict(Counter(q["label"] for q in quarantine).most_common()),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--tokenized", default="data/processed/tokenized")
    ap.add_argument("--out", default="data/processed/splits")
    ap.add_argument("--labels", default="data/processed/labels.json")
    ap.add_argument("--quarantine", default="reports/label_quarantine.jsonl")
    ap.add_argument("--report", default="reports/label.json")
    args = ap.parse_args(argv)
    log = setup_logging("label")
    p = load_section("label", LabelParams, args.params)

    from datasets import ClassLabel, Dataset, DatasetDict, load_from_disk

    ds = load_from_disk(args.tokenized)
    df = ds.to_pandas()
    kept, quarantine, names = canonicalise(df, p)
    splits = split_groups(kept, p)
    features = ds.features.copy()
    features["label"] = ClassLabel(names=names)
    to_id = {n: i for i, n in enumerate(names)}
    dd = DatasetDict(
        {
            k: Dataset.from_pandas(
                v.assign(label=v["label"].map(to_id)), features=features, preserve_index=False
            )
            for k, v in splits.items()
        }
    )
    with atomic_dir(args.out) as tmp:
        dd.save_to_disk(str(tmp))
    write_json(args.labels, {str(i): n for i, n in enumerate(names)})
    write_jsonl(args.quarantine, quarantine)
    report = label_report(splits, names, quarantine, p)
    write_json(args.report, report)
    log.info("classes %s; rows %s; quarantined %d", names, report["rows"], len(quarantine))


if __name__ == "__main__":
    main()
