"""The summary ends with the step that works after a rejection, and its header agrees with its table."""

from __future__ import annotations

import json
from pathlib import Path

from flows.dag import StageSpec
from flows.runner import StageOutcome
from flows.summary import build_summary, render_markdown

DAG = [
    StageSpec("check", "check", json_outputs=("reports/check.json",)),
    StageSpec("register", "register", json_outputs=("reports/registry.json",)),
]


def _registry(tmp_path: Path, action: str, promote: bool) -> None:
    (tmp_path / "reports").mkdir(exist_ok=True)
    gate = {
        "promote": promote,
        "checks": [{"name": "floor", "outcome": "pass" if promote else "fail", "reason": "macro_f1 0.8955"}],
    }
    report = {
        "action": action,
        "name": "pkgs",
        "version": "1",
        "run_id": "r1",
        "aliases": ["challenger"] + (["champion"] if promote else []),
        "champion": "1" if promote else None,
        "promoted": promote,
        "gate": gate,
    }
    (tmp_path / "reports" / "registry.json").write_text(json.dumps(report))


def test_a_rejected_first_version_ends_with_the_command_that_rejudges_it(tmp_path: Path) -> None:
    _registry(tmp_path, "registered", promote=False)
    outcomes = [StageOutcome("check", "ran"), StageOutcome("register", "ran")]
    text = render_markdown(build_summary(tmp_path, DAG, outcomes))
    last = text.rstrip().splitlines()[-1]
    assert "`ftpipe gate 1`" in last and "register.gate" in last and "`ftpipe promote 1 --reason" in last


def test_an_unchanged_rejected_version_still_says_what_to_do(tmp_path: Path) -> None:
    _registry(tmp_path, "unchanged", promote=False)
    outcomes = [StageOutcome("check", "ran"), StageOutcome("register", "ran", changed_nothing=True)]
    text = render_markdown(build_summary(tmp_path, DAG, outcomes))
    assert "`ftpipe gate 1`" in text.rstrip().splitlines()[-1]


def test_a_promoted_version_needs_no_next_step(tmp_path: Path) -> None:
    _registry(tmp_path, "registered", promote=True)
    outcomes = [StageOutcome("check", "ran"), StageOutcome("register", "ran")]
    assert "ftpipe gate" not in render_markdown(build_summary(tmp_path, DAG, outcomes))


def test_the_header_counts_a_stage_that_ran_and_changed_nothing(tmp_path: Path) -> None:
    """The issue's "Ran 1 of 10 stages: check." above a table in which register ran."""
    _registry(tmp_path, "unchanged", promote=True)
    outcomes = [StageOutcome("check", "ran"), StageOutcome("register", "ran", changed_nothing=True)]
    text = render_markdown(build_summary(tmp_path, DAG, outcomes))
    assert "| register | ran, changed nothing |" in text
    assert "**Ran 2 of 2 stages**: check, register (changed nothing)." in text
