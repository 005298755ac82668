"""A drift outcome recorded before any champion existed says so once one does (issue #33, item 4).

After v1 was registered, later summaries still said "skip: no registry store at mlflow.db yet": the drift
stage had not rerun (its data did not change), and the summary showed its old outcome as if it held.
"""

from __future__ import annotations

import json
from pathlib import Path

from flows.dag import StageSpec
from flows.runner import StageOutcome
from flows.summary import build_summary, render_markdown

DAG = [
    StageSpec("drift", "drift", ("validate",), json_outputs=("reports/drift.json",)),
    StageSpec("register", "register", ("drift",), json_outputs=("reports/registry.json",)),
]
REGISTRY = {
    "action": "unchanged",
    "name": "m",
    "version": "1",
    "run_id": "r",
    "aliases": ["champion"],
    "champion": "1",
    "promoted": True,
    "gate": None,
}


def summary_md(root: Path, drift: dict[str, object], registry: dict[str, object] | None) -> str:
    (root / "reports").mkdir(exist_ok=True)
    (root / "reports" / "drift.json").write_text(json.dumps(drift))
    if registry is not None:
        (root / "reports" / "registry.json").write_text(json.dumps(registry))
    outcomes = [StageOutcome("drift", "skipped"), StageOutcome("register", "skipped")]
    return render_markdown(build_summary(root, DAG, outcomes))


def test_a_skip_recorded_before_the_champion_says_it_predates_it(tmp_path: Path) -> None:
    drift = {"outcome": "skip", "reason": "no registry store at mlflow.db yet", "champion": None}
    md = summary_md(tmp_path, drift, REGISTRY)
    line = next(x for x in md.splitlines() if x.startswith("Drift"))
    assert "recorded before champion v1 existed" in line and "compares again when the data changes" in line


def test_a_skip_with_no_champion_now_is_shown_as_recorded(tmp_path: Path) -> None:
    drift = {"outcome": "skip", "reason": "no champion yet", "champion": None}
    md = summary_md(tmp_path, drift, {**REGISTRY, "aliases": ["challenger"], "champion": None})
    line = next(x for x in md.splitlines() if x.startswith("Drift"))
    assert "recorded outcome **skip**: no champion yet" in line and "existed" not in line
