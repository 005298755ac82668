"""ingest's label sets (`label.task: multi_label`): one record's labels as a sorted list, or why not.

    read_label_set({"text": "...", "tags": "billing|bug"}, IngestParams(label_field="tags", label_separator="|"))
    # (["billing", "bug"], "")

Three ways a source gives a text several labels: a list in a JSON/JSONL/Parquet cell; a string in
`ingest.label_field` split on `ingest.label_separator`; or several 0/1 columns (`ingest.label_columns`),
each a label named by its column. Labels are stripped, empty parts dropped, duplicates merged, sorted.
A cell that is none of these (a 2 in a 0/1 column, a scalar where a list is needed, a non-string item,
an empty set) gives no labels and the reason, which ingest writes to rejects.jsonl.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from stages.config.ingest import IngestParams
from stages.core.label_sets import LABEL_SET_SEPARATOR

ONES = {"1", "1.0", "true"}
ZEROS = {"0", "0.0", "false"}  # a blank cell is neither: rejected, never read as 0


def label_fields(p: IngestParams, multi: bool) -> list[str]:
    """The columns (or JSON keys) a record's label is read from."""
    if multi and p.label_columns is not None:
        return list(p.label_columns)
    return [p.label_field]


def _flag(value: object) -> bool | None:
    """A 0/1 cell as a bool; None when it is neither (a 2, a word, a list)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True if value == 1 else False if value == 0 else None  # NaN: neither
    if isinstance(value, str):
        folded = value.strip().lower()
        return True if folded in ONES else False if folded in ZEROS else None
    return None


def _from_columns(rec: Mapping[str, object], columns: list[str]) -> tuple[list[str], str]:
    labels = []
    for col in columns:
        flag = _flag(rec.get(col))
        if flag is None:
            return [], f"label column `{col}` is not 0/1 (got {str(rec.get(col))[:40]!r})"
        if flag:
            labels.append(col)
    return labels, ""


def _items(cell: object, p: IngestParams) -> tuple[list[object] | None, str]:
    """The cell's items: a list (a JSON array, a Parquet list), or a string split on the separator."""
    if isinstance(cell, (list, tuple, np.ndarray)):
        return list(cell), ""
    if isinstance(cell, str) and p.label_separator is not None:
        return list(cell.split(p.label_separator)), ""
    how = (
        f"a string split on ingest.label_separator {p.label_separator!r}"
        if p.label_separator is not None
        else "a list (or set ingest.label_separator for a delimited string)"
    )
    return None, f"label `{p.label_field}` is not a label set (got {type(cell).__name__}; needs {how})"


def read_label_set(rec: Mapping[str, object], p: IngestParams) -> tuple[list[str], str]:
    """The record's label set, sorted and unique, and "" ; or [] and why the record is rejected."""
    if p.label_columns is not None:
        labels, why = _from_columns(rec, p.label_columns)
    else:
        items, why = _items(rec[p.label_field], p)
        labels = []
        for item in items or []:
            if isinstance(item, (bool, np.bool_)) or not isinstance(item, (str, int, np.integer)):
                return [], f"label `{p.label_field}` holds a {type(item).__name__}, not a string or integer"
            labels.append(str(item).strip())
    if why:
        return [], why
    found = sorted({x for x in labels if x})
    if not found:
        return [], f"empty label set in {', '.join(f'`{c}`' for c in label_fields(p, True))}"
    joined = [x for x in found if LABEL_SET_SEPARATOR in x]
    if joined:  # a set is written as one string with this separator (predictions, the served answer)
        return [], (
            f"label `{joined[0][:40]}` contains {LABEL_SET_SEPARATOR!r}, which joins a set's labels into one "
            "string in predictions and served answers; rename the label"
        )
    return found, ""
