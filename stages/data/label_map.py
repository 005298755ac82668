"""data/processed/labels.json, the label map: class id -> name, written by label, read by every later stage.

    write_label_map(Path("data/processed/labels.json"), ["billing", "bug"])   # {"0": "billing", "1": "bug"}
    names = read_label_names(Path("data/processed/labels.json"))              # ["billing", "bug"]

One writer and one reader, so finetune, evaluate, validate and register agree on what a label map is:
the ids "0" .. "n-1", each once, for at least two distinct, non-empty class names. Anything else is one
`LabelMapError` that names the file and the fix (rerun the label stage).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from stages.core.io import read_json, write_json

FIX = "Rerun the label stage (`dvc repro label`), which writes it from the data and `label.labels`."


class LabelMapError(ValueError):
    """labels.json is not the label stage's label map; the message names the file and the fix."""


def label_map(names: Sequence[str]) -> dict[str, str]:
    """The label map of `names`, in id order: {"0": names[0], "1": names[1], ...}."""
    return {str(i): n for i, n in enumerate(names)}


def write_label_map(path: str | Path, names: Sequence[str]) -> None:
    """Write labels.json (as every stage output: indented, key-sorted JSON, atomically)."""
    write_json(path, label_map(names))


def map_problem(data: object) -> str | None:
    """Why `data` is not a label map (None when it is one)."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    ids = [str(i) for i in range(len(data))]
    if set(data) != set(ids):
        return f'its keys {sorted(data, key=str)} are not the class ids "0" .. "{len(data) - 1}"'
    if len(data) < 2:
        return f"{len(data)} class(es); classification needs at least two"
    names = [data[i] for i in ids]
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        return f"class names must be non-empty strings, not {bad}"
    twice = sorted({n for n in names if names.count(n) > 1})
    return f"class names {twice} appear more than once" if twice else None


def label_names(data: object, path: str | Path) -> list[str]:
    """The class names of the label map `data` (read from `path`) in id order, checked."""
    problem = map_problem(data)
    if problem is not None:
        raise LabelMapError(f"{path}: not a label map ({problem}). {FIX}")
    assert isinstance(data, dict)  # map_problem checked it
    return [str(data[str(i)]) for i in range(len(data))]


def read_label_names(path: str | Path) -> list[str]:
    """The class names of labels.json in id order; a `LabelMapError` when it is not a label map."""
    try:
        data = read_json(path)
    except json.JSONDecodeError as exc:
        raise LabelMapError(f"{path}: not a label map (not JSON: {exc}). {FIX}") from None
    return label_names(data, path)
