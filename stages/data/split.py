"""The label split: each near-duplicate group to one side, the ledger, what moved, and the split datasets.

    sides = split_groups(rows, params)                      # {split: rows}, a group never straddles two
    moves = movement(sides, previous_ledger)                # rows new and rows that changed side
    split_datasets(tokenized, sides, names, work).save_to_disk("data/processed/splits")

`label.split: stable` (the default) places a group by a keyed hash of its key and `label.seed`, so adding
or removing rows never moves another row; `random` is the earlier seeded, stratified `train_test_split`.
Label sets (`label.task: multi_label`) are placed the same way, a set standing for its rarest label
wherever a class is needed (`rarest_labels`); their `label` column is a list of class ids.
The splits are written Arrow record batch by record batch: no token id is ever a Python object.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from datasets import ClassLabel, Dataset, DatasetDict, List
from sklearn.model_selection import train_test_split

from stages.config.label import LabelParams
from stages.data.labels import LabelError

SPLITS = ("train", "validation", "test")
LIGHT_COLUMNS = ("id", "text", "label", "group")  # all the split reads; the token ids stay in Arrow


def group_position(key: str, seed: int) -> float:
    """Map a group key to [0, 1) with a hash keyed by the seed: the same key and seed, the same number."""
    digest = hashlib.blake2b(key.encode(), key=str(seed).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def group_labels(df: pd.DataFrame) -> pd.Series:
    """The label of each group (its most frequent one; on a tie, the one that comes first in the
    group), indexed by group key in sorted order.

    Columnwise: a Python call per group (`value_counts`) took 135 of label's 152 s at 200,000 rows."""
    pairs = pd.DataFrame(
        {"group": df["group"].to_numpy(), "label": df["label"].to_numpy(), "pos": np.arange(len(df))}
    )
    counts = pairs.groupby(["group", "label"], sort=False).agg(n=("pos", "size"), first=("pos", "min"))
    counts = counts.reset_index().sort_values(
        ["group", "n", "first"], ascending=[True, False, True], kind="stable"
    )
    best = counts.drop_duplicates("group", keep="first")
    return pd.Series(
        best["label"].to_numpy(), index=pd.Index(best["group"].to_numpy(), name="group"), name="label"
    )


def stable_sides(groups: pd.Series, p: LabelParams) -> dict[str, str]:
    """Assign each group to a split by its keyed-hash position: test below `test_size`, validation below
    `test_size + validation_size`, train above. No group's side depends on any other group.

    The one exception keeps tiny classes usable: a class with at least three groups but none in some
    split gets the group whose position lies nearest that split's interval moved into it (the report
    counts these; with a few hundred groups per class it never happens).
    """
    bounds = {"test": (0.0, p.test_size), "validation": (p.test_size, p.test_size + p.validation_size)}
    bounds["train"] = (p.test_size + p.validation_size, 1.0)
    pos = {g: group_position(g, p.seed) for g in groups.index}
    side = {g: next(k for k, (lo, hi) in bounds.items() if lo <= u < hi) for g, u in pos.items()}
    for _label, members in groups.groupby(groups, sort=True):
        keys = sorted(members.index)
        if len(keys) < len(SPLITS):
            continue
        for split in SPLITS:
            if any(side[g] == split for g in keys):
                continue
            counts = Counter(side[g] for g in keys)
            lo, hi = bounds[split]
            donors = [g for g in keys if counts[side[g]] > 1]
            best = min(donors, key=lambda g: (min(abs(pos[g] - lo), abs(pos[g] - hi)), g))
            side[best] = split
    return side


def random_sides(groups: pd.Series, p: LabelParams) -> dict[str, str]:
    """The earlier split: seeded, stratified `train_test_split` over groups (reshuffles when data changes)."""
    g_ids, g_labels = groups.index.to_numpy(), groups.to_numpy()
    try:
        rest, test = train_test_split(g_ids, test_size=p.test_size, stratify=g_labels, random_state=p.seed)
        val_share = p.validation_size / (1.0 - p.test_size)
        train, val = train_test_split(
            rest, test_size=val_share, stratify=groups.loc[rest].to_numpy(), random_state=p.seed
        )
    except ValueError as exc:
        raise LabelError(
            f"label: cannot stratify the split ({exc}); groups per class: {dict(Counter(g_labels))}. Raise "
            "label.min_class_rows, add data or change validation_size/test_size."
        ) from None
    return {g: name for name, ids in zip(SPLITS, (train, val, test), strict=True) for g in ids}


def rarest_labels(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with each label set (label.task multi_label) replaced by its rarest label (fewest rows
    overall; on a tie, the first by name): the stratum `stable_sides` and `random_sides` keep whole."""
    counts = Counter(x for labels in df["label"] for x in labels)
    return df.assign(label=[min(labels, key=lambda x: (counts[x], x)) for labels in df["label"]])


def split_groups(df: pd.DataFrame, p: LabelParams) -> dict[str, pd.DataFrame]:
    """Split rows by their group's side, so a near-duplicate group never straddles two splits. Label
    sets are placed by the rarest label of each set (the only use of the label under `stable`: the
    rescue of a class missing from a split)."""
    groups = group_labels(rarest_labels(df) if p.task == "multi_label" else df)
    side = stable_sides(groups, p) if p.split == "stable" else random_sides(groups, p)
    where = df["group"].map(side)
    return {name: df[where == name].reset_index(drop=True) for name in SPLITS}


def ledger_of(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per id: its group and split (what the next run compares itself with)."""
    parts = [v[["id", "group"]].assign(split=k) for k, v in splits.items()]
    return pd.concat(parts, ignore_index=True).sort_values("id", kind="stable").reset_index(drop=True)


def movement(splits: dict[str, pd.DataFrame], previous: pd.DataFrame | None) -> dict[str, Any]:
    """Per split: rows new since the previous run and rows that changed side; rows removed since then."""
    if previous is None:
        return {"previous_run": False}
    before = dict(zip(previous["id"].astype(str), previous["split"], strict=True))
    out: dict[str, Any] = {"previous_run": True, "new": {}, "changed_side": {}, "changed_from": {}}
    now_ids: set[str] = set()
    for name, part in splits.items():
        ids = part["id"].astype(str)
        now_ids.update(ids)
        old = ids.map(before)
        out["new"][name] = int(old.isna().sum())
        moved = old.notna() & (old != name)
        out["changed_side"][name] = int(moved.sum())
        out["changed_from"][name] = dict(Counter(old[moved]).most_common())
    out["removed"] = len(set(before) - now_ids)
    return out


def label_report(
    splits: dict[str, pd.DataFrame],
    names: list[str],
    quarantine: list[dict[str, Any]],
    p: LabelParams,
    moves: dict[str, Any],
) -> dict[str, Any]:
    """Rows and class counts per split, each class's share of each split against its share overall.
    Label sets (label.task multi_label): a row counts once for each label of its set."""
    multi = p.task == "multi_label"
    total = sum(len(v) for v in splits.values())
    overall = {n: sum(_rows_with(v["label"], n, multi) for v in splits.values()) for n in names}
    counts = {k: {n: _rows_with(v["label"], n, multi) for n in names} for k, v in splits.items()}
    share_gap = {
        k: {n: round(counts[k][n] / max(len(v), 1) - overall[n] / max(total, 1), 4) for n in names}
        for k, v in splits.items()
    }
    return {
        "classes": names,
        "split": p.split,
        "seed": p.seed,
        "rows": {k: len(v) for k, v in splits.items()},
        "class_counts": counts,
        "class_share_gap": share_gap,
        "max_class_share_gap": max((abs(x) for d in share_gap.values() for x in d.values()), default=0.0),
        "movement": moves,
        "quarantined": len(quarantine),
        "quarantined_labels": dict(Counter(_each(q["label"]) for q in quarantine).most_common()),
    }


def _rows_with(labels: pd.Series, name: str, multi: bool) -> int:
    """Rows whose label is `name` (multi: whose label set holds it)."""
    return sum(name in s for s in labels) if multi else int((labels == name).sum())


def _each(label: str | list[str]) -> str:
    """A quarantined row's label as one key: a set's labels joined by `|`."""
    return label if isinstance(label, str) else "|".join(label)


def read_columns(ds: Dataset) -> pd.DataFrame:
    """The columns the split needs (never the token ids), and each row's position (`_row`) in `ds`."""
    df = ds.select_columns([c for c in LIGHT_COLUMNS if c in ds.column_names]).to_pandas()
    assert isinstance(df, pd.DataFrame)  # to_pandas gives an iterator only when asked for batches
    df["_row"] = np.arange(len(df), dtype=np.int64)
    return df


def split_fingerprint(
    ds: Dataset, name: str, rows: np.ndarray, ids: np.ndarray | pa.Array, names: list[str]
) -> str:
    """A split's datasets fingerprint: a digest of the tokenized dataset's, the rows and their classes,
    so that a rerun on the same data saves the same `state.json`."""
    h = hashlib.sha256(f"{ds._fingerprint}|{name}|{names}".encode())
    h.update(rows.tobytes())
    if isinstance(ids, pa.ListArray):  # label sets: their offsets and flat ids
        h.update(ids.offsets.to_numpy().tobytes())
        h.update(ids.flatten().to_numpy().tobytes())
    else:
        h.update(ids.tobytes())
    return h.hexdigest()[:16]


def split_datasets(ds: Dataset, splits: dict[str, pd.DataFrame], names: list[str], work: Path) -> DatasetDict:
    """Each split as a dataset: its rows of `ds` with the label as a class id (label sets: a list of class
    ids, `List(ClassLabel)`, which datasets also calls `Sequence`), written record batch by record batch into `work` (Arrow all the way: no
    split, and no token id, is ever a Python object)."""
    features = ds.features.copy()
    multi = isinstance(features["label"], List)  # label.task multi_label: tokenize kept list<string>
    features["label"] = List(ClassLabel(names=names)) if multi else ClassLabel(names=names)
    at = ds.column_names.index("label")
    to_id = {n: i for i, n in enumerate(names)}
    out = {}
    for name, part in splits.items():
        rows = part["_row"].to_numpy(dtype=np.int64)
        ids = set_ids(part["label"], to_id) if multi else part["label"].map(to_id).to_numpy(dtype=np.int64)

        def relabel(t: pa.Table, idx: list[int], ids: np.ndarray | pa.ListArray = ids) -> pa.Table:
            if isinstance(ids, pa.ListArray):
                return t.set_column(at, "label", ids.take(pa.array(idx, pa.int64())))
            return t.set_column(at, "label", pa.array(ids[idx], pa.int64()))

        sub = ds.select(rows, keep_in_memory=True).with_format("arrow")
        out[name] = sub.map(
            relabel,
            batched=True,
            with_indices=True,
            features=features,
            cache_file_name=str(work / f"{name}.arrow"),
            new_fingerprint=split_fingerprint(ds, name, rows, ids, names),
            desc=f"label {name}",
        ).with_format(None)
    return DatasetDict(out)


def set_ids(labels: pd.Series, to_id: dict[str, int]) -> pa.ListArray:
    """Each row's label set as its sorted class ids (an Arrow list array, indexed by row of the split)."""
    return pa.array([sorted(to_id[x] for x in s) for s in labels], pa.list_(pa.int64()))
