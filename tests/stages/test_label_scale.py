"""label's columnwise split (written for 1M rows) against a plain-Python reference, and the stage's determinism.

The generated input has what real data has: texts repeated within and across groups, label spellings that fold
to one class (case, whitespace, an alias, non-ASCII), empty labels (quarantined), groups that disagree on their
label (majorities and ties), groups left empty once their rows are quarantined, an empty group key, a class
with only three groups (the move that gives it a group in every split) and a declared class without rows.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from datasets import Dataset, Features, List, Value, load_from_disk

from stages.config.label import LabelParams
from stages.config.paths import path_argv
from stages.data.labels import canonicalise
from stages.data.split import SPLITS, group_labels, split_groups
from stages.label import main

SPELLINGS = {  # raw label -> its class after the fold (label.lowercase and ALIASES)
    "sport": "sport",
    " Sport ": "sport",
    "SPORT\t": "sport",
    "café": "café",
    "CAFÉ": "café",
    "Café  ": "café",
    "日本語": "日本語",
    " 日本語": "日本語",
    "tech": "tech",
    "Technology": "tech",
    "naïve  label": "naïve label",
    "NAÏVE label": "naïve label",
}
ALIASES = {"technology": "tech"}
QUARANTINED = ["", "   "]
GROUP_KEYS = ["", "é", "Ä", "z", "日本", "ß-key", "a b"]  # non-ASCII, a space, and the empty key


def generated(n_groups: int, seed: int) -> list[dict[str, str]]:
    """Rows in a shuffled order, so that a group's rows are scattered (the tie-break is by first row)."""
    rng = random.Random(seed)
    spellings = [s for s in SPELLINGS if SPELLINGS[s] != "naïve label"]
    tiny = [s for s in SPELLINGS if SPELLINGS[s] == "naïve label"]
    rows: list[dict[str, str]] = []
    keys = [*GROUP_KEYS, *(f"g{i:05d}-ü" for i in range(n_groups))]
    for g, key in enumerate(keys):
        base = rng.choice(spellings)
        text = f"text {rng.randrange(n_groups // 2)} ✓"  # texts also repeat across groups
        size = rng.choice([1, 1, 2, 3, 4])
        for _ in range(size):
            r = rng.random()
            label = base if r < 0.7 else rng.choice(spellings) if r < 0.92 else rng.choice(QUARANTINED)
            rows.append({"text": text, "label": label, "group": key})
        if g % 50 == 7:  # a group whose every row is quarantined: gone after canonicalise
            rows += [{"text": text, "label": "", "group": f"{key}-empty"}] * 2
        if g % 40 == 3:  # a 2:2 tie between two classes: the label of the group's first row wins
            a, b = rng.sample(spellings, 2)
            rows += [{"text": text, "label": x, "group": f"{key}-tie"} for x in (a, b, b, a)]
    for k in range(3):  # a class with three groups: some split gets a group moved into it
        rows += [{"text": f"tiny {k}", "label": rng.choice(tiny), "group": f"tiny-{k}"} for _ in range(4)]
    rng.shuffle(rows)
    return [{"id": f"r{i:06d}", **r} for i, r in enumerate(rows)]


# ------------------------------------------------------------------- the reference, one row at a time


def fold(label: str) -> str:
    folded = " ".join(label.split()).lower()
    return ALIASES.get(folded, folded)


def ref_group_labels(rows: list[dict[str, str]]) -> dict[str, str]:
    """Each group's most frequent label; on a tie, the label of the group's earliest row among the tied."""
    counts: dict[str, Counter[str]] = {}
    first: dict[tuple[str, str], int] = {}
    for i, r in enumerate(rows):
        counts.setdefault(r["group"], Counter())[r["label"]] += 1
        first.setdefault((r["group"], r["label"]), i)
    return {g: min(c, key=lambda x: (-c[x], first[g, x])) for g, c in sorted(counts.items())}


def ref_position(key: str, seed: int) -> float:
    digest = hashlib.blake2b(key.encode("utf-8"), key=str(seed).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def ref_sides(labels: dict[str, str], p: LabelParams) -> dict[str, str]:
    """Side by keyed-hash position; then, per class of >= 3 groups, an empty split takes the nearest group
    from a split that keeps one (classes and splits in order, nearest by distance to the split's interval)."""
    edges = {"test": (0.0, p.test_size), "validation": (p.test_size, p.test_size + p.validation_size)}
    edges["train"] = (p.test_size + p.validation_size, 1.0)
    pos = {g: ref_position(g, p.seed) for g in labels}
    side = {g: next(s for s, (lo, hi) in edges.items() if lo <= u < hi) for g, u in pos.items()}
    for name in sorted(set(labels.values())):
        keys = sorted(g for g, x in labels.items() if x == name)
        for split in SPLITS if len(keys) >= 3 else ():
            held = Counter(side[g] for g in keys)
            if held[split]:
                continue
            lo, hi = edges[split]
            donor = min(
                (g for g in keys if held[side[g]] > 1),
                key=lambda g: (min(abs(pos[g] - lo), abs(pos[g] - hi)), g),
            )
            side[donor] = split
    return side


def ref_splits(rows: list[dict[str, str]], p: LabelParams) -> tuple[dict[str, list[dict[str, str]]], int]:
    """(rows per split, in input order, labels folded; number of quarantined rows)."""
    kept = [{**r, "label": fold(r["label"])} for r in rows if fold(r["label"])]
    if p.labels is not None:
        kept = [r for r in kept if r["label"] in {fold(x) for x in p.labels}]
    side = ref_sides(ref_group_labels(kept), p)
    return {s: [r for r in kept if side[r["group"]] == s] for s in SPLITS}, len(rows) - len(kept)


# ------------------------------------------------------------------------------------------- the tests


def frame(rows: list[dict[str, str]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=["id", "text", "label", "group"])


@pytest.mark.parametrize("seed", [0, 1])
def test_group_labels_match_the_row_by_row_reference(seed: int) -> None:
    rows = generated(1500, seed)
    kept, _, _ = canonicalise(frame(rows), LabelParams(aliases=ALIASES))
    want = ref_group_labels([{**r, "label": fold(r["label"])} for r in rows if fold(r["label"])])
    got = group_labels(kept)
    assert list(got.index) == list(want)  # sorted keys, the empty key first
    assert got.to_dict() == want
    assert "" in want and not any(g.endswith("-empty") for g in want)
    ties = [g for g in want if g.endswith("-tie")]
    assert ties and all(want[g] == fold(next(r for r in rows if r["group"] == g)["label"]) for g in ties)


@pytest.mark.parametrize(
    "params",
    [
        LabelParams(aliases=ALIASES, min_class_rows=3),
        LabelParams(aliases=ALIASES, min_class_rows=3, seed=7, validation_size=0.2, test_size=0.1),
        LabelParams(aliases=ALIASES, labels=["Sport", "CAFÉ", "tech", "naïve label", "ghost"]),
    ],
    ids=["default", "reseeded", "declared"],
)
def test_split_matches_the_row_by_row_reference(params: LabelParams) -> None:
    rows = generated(1500, 2)
    kept, quarantine, _ = canonicalise(frame(rows), params)
    got = split_groups(kept, params)
    want, n_quarantined = ref_splits(rows, params)
    assert len(quarantine) == n_quarantined
    for s in SPLITS:
        assert got[s][["id", "text", "label", "group"]].to_dict(orient="records") == want[s], s
    tiny = [{r["group"] for r in want[s] if r["label"] == "naïve label"} for s in SPLITS]
    assert all(tiny), tiny  # the three-group class reaches every split


def tokenized(rows: list[dict[str, str]], path: Path) -> Path:
    """The tokenize stage's contract, with token ids that name their row (so a moved row shows)."""
    features = Features(
        {
            "id": Value("string"),
            "text": Value("string"),
            "label": Value("string"),
            "group": Value("string"),
            "input_ids": List(Value("int32")),
            "attention_mask": List(Value("int8")),
        }
    )
    data: dict[str, list[Any]] = {k: [r[k] for r in rows] for k in ("id", "text", "label", "group")}
    data["input_ids"] = [[2, i, len(r["text"]), 3] for i, r in enumerate(rows)]
    data["attention_mask"] = [[1] * 4 for _ in rows]
    Dataset.from_dict(data, features=features).save_to_disk(str(path))
    return path


def run_stage(tmp: Path, data: Path, params: Path) -> dict[str, Path]:
    outs = {
        "out": tmp / "splits",
        "labels": tmp / "labels.json",
        "quarantine": tmp / "quarantine.jsonl",
        "ledger": tmp / "ledger.parquet",
        "report": tmp / "label.json",
    }
    main(
        [
            "--params",
            str(params),
            *path_argv("label", tokenized=str(data), **{k: str(v) for k, v in outs.items()}),
        ]
    )
    return outs


def test_the_stage_writes_the_reference_split_and_the_same_bytes_twice(tmp_path: Path) -> None:
    rows = generated(300, 3)
    data = tokenized(rows, tmp_path / "tokenized")
    p = LabelParams(aliases=ALIASES, min_class_rows=3)
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"label": p.model_dump()}))  # JSON is YAML
    first, second = (run_stage(tmp_path / f"run{k}", data, params) for k in (1, 2))
    names = sorted(set(SPELLINGS.values()))
    assert json.loads(first["labels"].read_text()) == {str(i): n for i, n in enumerate(names)}
    want, n_quarantined = ref_splits(rows, p)
    position = {r["id"]: i for i, r in enumerate(rows)}
    for s in SPLITS:
        a, b = load_from_disk(str(first["out"] / s)), load_from_disk(str(second["out"] / s))
        assert a.data.table.equals(b.data.table), s  # content-equal across two runs
        assert a.features == b.features and a.features["label"].names == names
        expected = [
            {**r, "label": names.index(r["label"]), "input_ids": [2, position[r["id"]], len(r["text"]), 3]}
            for r in want[s]
        ]
        assert [{k: row[k] for k in expected[0]} for row in a] == expected, s
    for key in ("labels", "quarantine", "report"):
        assert first[key].read_bytes() == second[key].read_bytes(), key
    assert pq.read_table(first["ledger"]).equals(pq.read_table(second["ledger"]))
    assert len(first["quarantine"].read_text().splitlines()) == n_quarantined
    for s in (*SPLITS, "dataset_dict.json"):
        state = Path(s, "state.json") if s in SPLITS else Path(s)
        assert (first["out"] / state).read_bytes() == (second["out"] / state).read_bytes(), s
