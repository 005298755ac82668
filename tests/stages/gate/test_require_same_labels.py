"""`require_same_labels`: the register stage's refusal of another task's labels under a champion's name."""

from __future__ import annotations

import pytest

from stages.config.register import GateParams
from stages.gate.checks import LabelSetChanged, require_same_labels
from stages.registry.reader import VersionRecord

GATE = GateParams()


def champion(labels: list[str] | None, version: str = "3") -> VersionRecord:
    return VersionRecord(version=version, run_id="r", labels=labels, trained_on=None, profile=None)


def test_the_same_set_in_any_order_no_champion_or_unknown_labels_pass() -> None:
    require_same_labels(GATE, "news", ["b", "a"], champion(["a", "b"]))
    require_same_labels(GATE, "news", ["x"], None)  # the first version: nothing to compare with
    require_same_labels(GATE, "news", ["x"], champion(None))  # the gate's `labels` check fails it, by name


def test_other_labels_are_refused_in_one_paragraph_naming_both_sets_and_the_fix() -> None:
    with pytest.raises(LabelSetChanged) as refused:
        require_same_labels(GATE, "ftpipe-bbc-news", ["billing", "tech"], champion(["sport", "tech"]))
    msg = str(refused.value)
    assert "\n" not in msg
    assert msg.startswith("registered model `ftpipe-bbc-news` (register.model_name in params.yaml)")
    assert "champion v3 predicts [sport, tech], this model predicts [billing, tech]" in msg
    assert "(not in the champion's: [billing]; missing: [sport])" in msg
    assert "Nothing was registered" in msg
    assert "`ftpipe init NAME --csv YOUR.csv`" in msg and "`register.model_name: NAME`" in msg
    assert "`register.gate.allow_label_change: true`" in msg


def test_an_intended_label_change_is_left_to_the_gate() -> None:
    allow = GATE.model_copy(update={"allow_label_change": True})
    require_same_labels(allow, "news", ["billing"], champion(["sport"]))


def test_a_long_label_set_is_cut_short() -> None:
    many = [f"label{i:03d}" for i in range(200)]
    with pytest.raises(LabelSetChanged, match=r"label019, \.\.\. \(200 in all\)\]") as refused:
        require_same_labels(GATE, "news", many, champion(["a", "b"]))
    assert "label020" not in str(refused.value)
