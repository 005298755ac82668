"""The label fold, shared by label and clean, and label's canonicalisation of a whole table.

label canonicalises every row's label with `canonical` (whitespace and, with `label.lowercase`, case
folded, then mapped through `label.aliases`); clean judges two copies of one text to conflict only when
their labels still differ after this same fold, so "Sport" and "sport" on one text are a duplicate, not a
conflict. clean reads the `label` section the one way a stage reads another's (stages/config/params.py):
`load_section("label", LabelParams, path)`, tracking `label.lowercase` and `label.aliases` in dvc.yaml.
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
