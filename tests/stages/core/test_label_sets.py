"""A label set as one string: joined in id order, split back, and the served model's copy of the separator."""

from __future__ import annotations

from stages.core.label_sets import LABEL_SET_SEPARATOR, join_set, split_set
from stages.serving import textclf


def test_join_and_split_sets() -> None:
    assert join_set(["a", "c"]) == "a|c"
    assert split_set("a|c") == ["a", "c"]
    assert split_set(join_set(["solo"])) == ["solo"]
    assert split_set("") == [] and join_set([]) == ""
    assert split_set(float("nan")) == []  # a missing CSV cell


def test_the_served_model_joins_sets_with_the_same_separator() -> None:
    # textclf.py is registered with the model and imports nothing of stages: its copy must agree
    assert textclf.LABEL_SET_SEPARATOR == LABEL_SET_SEPARATOR == "|"
