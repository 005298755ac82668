"""A set of labels per text (`label.task: multi_label`): the task's name, and a set as one string.

    join_set(["billing", "bug"])   # "billing|bug": the names in id order joined by LABEL_SET_SEPARATOR
    split_set("billing|bug")       # ["billing", "bug"]; "" (or a missing CSV cell) is the empty set

A set travels as one string in predictions.csv, the served `label` column, the smoke record and the gate's
champion predictions; ingest quarantines a label that holds the separator. `NO_LABEL` marks the side of a
(text, label) confusion pair that lacks the label. The served model's own module
(stages/serving/textclf.py) imports nothing of stages and keeps its own copy of the separator.
"""

from __future__ import annotations

from collections.abc import Sequence

MULTI_LABEL_TASK = "multi_label"  # label.task, metrics.json's and the registry's `task`
LABEL_SET_SEPARATOR = "|"
NO_LABEL = "(none)"


def join_set(names: Sequence[str]) -> str:
    """A label set as one string: the names (already in id order) joined by `LABEL_SET_SEPARATOR`."""
    return LABEL_SET_SEPARATOR.join(names)


def split_set(s: object) -> list[str]:
    """The names of a set string written by `join_set`; "" or a missing cell (NaN) is the empty set."""
    if not isinstance(s, str):
        return []
    return [x for x in s.split(LABEL_SET_SEPARATOR) if x]
