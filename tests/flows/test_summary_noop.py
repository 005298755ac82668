"""A run that changed nothing says so truthfully: the champion and its gate as "unchanged".

The no-op summary used to repeat the old registry report as news ("Gate: passed: promoted to champion"
with a "no champion yet" check) and the data section's "rows removed since the last run" from an
earlier run.
"""

from __future__ import annotations

import json
from pathlib import Path

from flows.dag import StageSpec
from flows.runner import LOG_DIR, StageOutcome
from flows.summary import build_summary, render_markdown

REGISTRY = {
    "action": "unchanged",
    "name": "ftpipe-bbc-news",
    "version": "3",
    "run_id": "abc",
    "aliases": ["champion"],
    "champion": "3",
    "promoted": True,
    "gate": {
        "promote": True,
        "checks": [{"name": "significance", "outcome": "skip", "reason": "no champion yet"}],
    },
}
PROFILE = {
    "headline": {
        "rows": {"train": 80, "validation": 10, "test": 10},
        "batches": 1,
        "median_chars": 300.0,
        "median_tokens": 60.0,
        "truncated_share": 0.1,
        "unk_share": 0.001,
        "checks": 3,
        "failed": 0,
        "passed": True,
    },
    "checks": [],
}
LABEL = {"movement": {"previous_run": True, "new": {"train": 5}, "changed_side": {}, "removed": 7}}
CLEAN = {
    "rows_in": 120,
    "rows_out": 100,
    "rejected": 20,
    "reject_reasons": {"duplicate": 15, "too_short": 5},
    "duplicates": 15,
    "length_warnings": [],
}

DAG = [
    StageSpec("clean", "clean", json_outputs=("reports/clean.json",)),
    StageSpec("label", "label", ("clean",), json_outputs=("reports/label.json",)),
    StageSpec("validate", "validate", ("label",), json_outputs=("reports/data_profile.json",)),
    StageSpec(
        "register", "register", ("validate",), always_changed=True, json_outputs=("reports/registry.json",)
    ),
]


def write_reports(root: Path) -> None:
    (root / "reports").mkdir()
    for name, data in (
        ("registry.json", REGISTRY),
        ("data_profile.json", PROFILE),
        ("label.json", LABEL),
        ("clean.json", CLEAN),
    ):
        (root / "reports" / name).write_text(json.dumps(data))


def test_a_no_op_run_says_unchanged(tmp_path: Path) -> None:
    write_reports(tmp_path)
    outcomes = [StageOutcome(s.name, "skipped") for s in DAG[:3]]
    outcomes.append(StageOutcome("register", "ran", 1.0, changed_nothing=True))
    summary = build_summary(tmp_path, DAG, outcomes)
    assert summary["up_to_date"]
    text = render_markdown(summary)
    assert "**Up to date**: nothing changed" in text
    assert "Champion: `ftpipe-bbc-news` version 3, unchanged." in text
    assert "### Registry (unchanged)" in text
    assert "Gate: unchanged (recorded when version 3 was registered: passed)." in text
    assert "promoted to champion" not in text and "no champion yet" not in text
    assert "rows removed since the last run" not in text and "new since the last run" not in text
    assert "Clean (unchanged): 120 rows in, 100 kept; rejected 20 (duplicate 15, too_short 5); " in text
    assert "duplicates collapsed: 15." in text


def test_a_run_with_new_data_says_what_moved(tmp_path: Path) -> None:
    write_reports(tmp_path)
    registered = dict(REGISTRY, action="registered")
    (tmp_path / "reports" / "registry.json").write_text(json.dumps(registered))
    summary = build_summary(tmp_path, DAG, [StageOutcome(s.name, "ran") for s in DAG])
    text = render_markdown(summary)
    assert "rows removed since the last run: 7." in text and "| train | 80 | 5 | — |" in text
    assert "Clean (this run)" in text and "Gate: **passed: promoted to champion**." in text


def test_a_clean_report_without_duplicates_still_shows_its_counts(tmp_path: Path) -> None:
    write_reports(tmp_path)
    clean = {k: v for k, v in CLEAN.items() if k != "duplicates"}
    (tmp_path / "reports" / "clean.json").write_text(json.dumps(clean))
    text = render_markdown(build_summary(tmp_path, DAG, [StageOutcome(s.name, "skipped") for s in DAG]))
    assert "rejected 20 (duplicate 15, too_short 5)." in text and "duplicates collapsed" not in text


def test_a_no_op_flow_run_shows_the_champion_unchanged(prefect_harness, tiny_repo: Path) -> None:
    from flows.retrain import retrain

    retrain(root=str(tiny_repo))
    logs = tiny_repo / LOG_DIR
    prepare_log = (logs / "prepare.log").stat().st_mtime_ns
    register_log = (logs / "register.log").stat().st_mtime_ns
    md = retrain(root=str(tiny_repo))["markdown"]
    assert "Champion: `tiny` version 1, unchanged." in md and "Gate: unchanged" in md
    assert "promoted to champion" not in md
    # one `dvc status` for the run: an up-to-date stage starts no `dvc repro` (its log is not rewritten);
    # register, always changed, still runs through DVC
    assert (logs / "prepare.log").stat().st_mtime_ns == prepare_log
    assert (logs / "register.log").stat().st_mtime_ns != register_log
