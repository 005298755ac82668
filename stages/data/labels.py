"""The label fold, shared by label and clean, and label's canonicalisation of a whole table.

label canonicalises every row's label with `canonical` (whitespace and, with `label.lowercase`, case
folded, then mapped through `label.aliases`); clean judges two copies of one text to conflict only when
their labels still differ after this same fold, so "Sport" and "sport" on one text are a duplicate, not a
conflict. clean reads the `label` section the one way a stage reads another's (stages/config/params.py):
`load_section("label", LabelParams, path)`, tracking `label.lowercase` and `label.aliases` in dvc.yaml.
Under `label.task: multi_label` each label of a row's set is folded the same way (`canonicalise_sets`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pandas as pd

from stages.config.label import LabelParams

_WS = re.compile(r"\s+")


class LabelError(ValueError):
    """The labels cannot be split; the message names the class and its count."""


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
    if p.task == "multi_label":
        return canonicalise_sets(df, p)
    df = df.copy()
    folded = {x: canonical(x, p) for x in pd.unique(df["label"])}  # once per distinct label, not per row
    df["label"] = [folded[x] for x in df["label"]]
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
    names = sorted(allowed) if allowed is not None else sorted(kept["label"].unique())
    if len(names) < 2:
        raise LabelError(
            f"label: {len(names)} class(es) left ({', '.join(names) or 'none'}); classification needs at "
            "least two. Check `label.labels` and `label.aliases` against the data's labels."
        )
    counts = Counter(kept["label"])
    small = {k: n for k, n in counts.items() if 0 < n < p.min_class_rows}
    if small:
        desc = ", ".join(f"`{k}` has {n}" for k, n in sorted(small.items()))
        raise LabelError(
            f"label: too few rows to stratify: {desc} (label.min_class_rows = {p.min_class_rows}). Add data, "
            "merge the class through `label.aliases`, or drop it with `label.labels`."
        )
    return kept, quarantine, names


def _set_quarantine(row: dict[str, Any], folded: list[str], reason: str) -> dict[str, Any]:
    return {"id": row["id"], "label": folded, "reason": reason, "text": row["text"][:200]}


def canonicalise_sets(
    df: pd.DataFrame, p: LabelParams
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[str]]:
    """`canonicalise` for label sets (label.task multi_label): each label of a set folded as one label is;
    labels outside `label.labels` and labels on fewer than `label.min_class_rows` rows are removed from
    the sets (`removed_labels`: which and why); a row whose set becomes empty is quarantined with the
    reason. Returns (kept rows, `label` a sorted list of names; the quarantine; the label names)."""
    df = df.copy()
    removed = removed_labels(df, p)
    kept_sets, quarantine, keep = [], [], []
    for row in df.to_dict(orient="records"):
        folded = fold_set(row["label"], p)
        left = [x for x in folded if x not in removed]
        keep.append(bool(left))
        kept_sets.append(left)
        if not folded:
            quarantine.append(_set_quarantine(row, folded, "empty label set"))
        elif not left:
            why = "; ".join(f"`{x}` {removed[x]['reason']}" for x in folded)
            quarantine.append(_set_quarantine(row, folded, f"no label left: {why}"))
    df["label"] = kept_sets
    kept = df[keep].reset_index(drop=True)
    allowed = None if p.labels is None else {canonical(x, p) for x in p.labels}
    names = sorted(allowed) if allowed is not None else sorted({x for s in kept["label"] for x in s})
    if len(names) < 2:
        rare = ", ".join(k for k, v in removed.items() if v["reason"] != NOT_DECLARED) or "none"
        raise LabelError(
            f"label: {len(names)} label(s) left ({', '.join(names) or 'none'}) after removing those on fewer "
            f"than label.min_class_rows = {p.min_class_rows} rows ({rare}); multi-label classification "
            "needs at least two. Add data, merge labels through `label.aliases`, or lower label.min_class_rows."
        )
    return kept, quarantine, names


NOT_DECLARED = "not in label.labels"


def fold_set(labels: Any, p: LabelParams) -> list[str]:
    """A row's label set folded label by label (`canonical`), sorted, unique, empty names dropped."""
    return sorted({canonical(str(x), p) for x in labels} - {""})


def removed_labels(df: pd.DataFrame, p: LabelParams) -> dict[str, dict[str, Any]]:
    """The labels `canonicalise_sets` removes from the sets of `df` (the unlabelled table), with their
    rows and why: the label report's `removed_labels`."""
    allowed = None if p.labels is None else {canonical(x, p) for x in p.labels}
    counts = Counter(x for labels in df["label"] for x in fold_set(labels, p))
    out: dict[str, dict[str, Any]] = {}
    for name, n in sorted(counts.items()):
        if allowed is not None and name not in allowed:
            out[name] = {"rows": n, "reason": NOT_DECLARED}
        elif n < p.min_class_rows:
            out[name] = {"rows": n, "reason": f"has {n} rows < label.min_class_rows {p.min_class_rows}"}
    return out
