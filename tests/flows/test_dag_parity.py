"""`dvc repro` and `ftpipe run` run the same DAG: the same stages in the same order, drift among them, and
the drift stage gives the same report whichever of the two runs it.

The drift check against the champion used to run only inside the Prefect flow, and even on a run with
nothing new, where it compared the champion's data with itself ("300 vs 0" texts). It is a dvc.yaml
stage now: the flow runs it only when DVC would, and a run that skips it shows the recorded outcome.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo
from dvc.repo.reproduce import plan_repro

from flows.dag import StageSpec, read_dag
from flows.params import apply_overrides
from flows.runner import StageFailed, StageOutcome
from flows.summary import build_summary, render_markdown
from tests.conftest import REPO, make_corpus, make_pipeline_repo, run_cmd
from tests.factories import new_store, register_version
from tests.registry_support import make_profile
from tests.stages.data.test_drift import cooking_rows, split

NAME = "parity"
DVC_ENV = {"DVC_NO_ANALYTICS": "1"}


def stage_names(summary: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in summary["stages"]}


def test_dvc_repro_and_the_flow_run_the_same_stages(tmp_path: Path) -> None:
    """The shipped dvc.yaml: DVC's own plan for `dvc repro` is the flow's list of stage tasks."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    Repo.init(str(tmp_path), no_scm=True)
    with Repo(str(tmp_path)) as repo:
        planned = [stage.name for stage in plan_repro(repo.index.graph) if stage.cmd]
        declared = sorted(stage.name for stage in repo.index.stages)
    flow = read_dag(tmp_path)
    assert [s.name for s in flow] == planned and sorted(planned) == declared
    assert planned.index("validate") < planned.index("drift") < planned.index("finetune")
    by = {s.name: s for s in flow}
    assert by["drift"].upstream == ("validate",) and "drift" in by["finetune"].upstream
    assert by["drift"].json_outputs == ("reports/drift.json",) and not by["drift"].always_changed


def test_summary_shows_a_skipped_drift_stage_as_recorded(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    report = {"outcome": "warn", "reason": "domain AUC 0.990", "champion": "1"}
    (tmp_path / "reports" / "drift.json").write_text(json.dumps(report))
    dag = [StageSpec("drift", "drift", ("validate",), json_outputs=("reports/drift.json",))]
    fresh = render_markdown(build_summary(tmp_path, dag, [StageOutcome("drift", "ran", 2.0)]))
    assert "Drift against champion v1 (before training, this run): **warn**: domain AUC 0.990" in fresh
    skipped = render_markdown(build_summary(tmp_path, dag, [StageOutcome("drift", "skipped")]))
    assert (
        "Drift against champion v1 (before training, unchanged since the last run): recorded outcome "
        "**warn**: domain AUC 0.990"
    ) in skipped
    assert "this run" not in skipped


def drift_repo(root: Path) -> Path:
    """The real stages and the real drift stage of dvc.yaml, with one step after it standing for finetune;
    validate's profile is in place (data unlike the champion's: a domain AUC near 1)."""
    repo = make_pipeline_repo(root, {"register": {"model_name": NAME, "gate": {"max_drift_auc": 0.8}}})
    drift = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["drift"]
    train = {
        "cmd": "cp reports/drift.json trained.json",
        "deps": ["reports/drift.json"],
        "outs": ["trained.json"],
    }
    (repo / "dvc.yaml").write_text(
        yaml.safe_dump({"stages": {"drift": drift, "train": train}}, sort_keys=False)
    )
    profile = repo / "data" / "processed" / "profile.json"
    profile.parent.mkdir(parents=True)
    profile.write_text(json.dumps(make_profile(split(cooking_rows(120), "b-"))))
    return repo


def test_drift_gives_the_same_report_by_dvc_or_by_the_flow(
    prefect_harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.retrain import retrain

    uri = new_store(tmp_path / "registry")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for the stages DVC and the flow start
    register_version(uri, NAME, profile=make_profile(split(make_corpus(n_per_class=40, seed=3), "a-")))
    repo = drift_repo(tmp_path / "repo")
    report = repo / "reports" / "drift.json"

    # over register.gate.max_drift_auc: `dvc repro` writes the report, stops, and never trains ...
    proc = run_cmd(["dvc", "repro"], repo, DVC_ENV, check=False)
    assert proc.returncode != 0 and "differs from champion v1's" in proc.stderr, proc.stderr[-2000:]
    by_dvc = report.read_bytes()
    assert json.loads(by_dvc)["outcome"] == "fail" and not (repo / "trained.json").exists()
    # ... and so does the flow, with the same report
    report.unlink()
    with pytest.raises(StageFailed, match=r"stage 'drift' failed: DriftError: drift: the new data differs"):
        retrain(root=str(repo))
    assert report.read_bytes() == by_dvc and not (repo / "trained.json").exists()

    # drift only warns without the cap: training goes on
    apply_overrides(repo, ["register.gate.max_drift_auc=null"])  # kept: `-S` holds for one run only
    ran = retrain(root=str(repo))
    assert stage_names(ran) == {"drift": "ran", "train": "ran"}
    assert "Drift against champion v1 (before training, this run): **warn**" in ran["markdown"]
    by_flow = report.read_bytes()
    assert json.loads(by_flow)["outcome"] == "warn"
    # the stage's command, run as DVC runs it, writes the very same bytes: nothing is stale after it
    cmd = shlex.split(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]["drift"]["cmd"])
    run_cmd([sys.executable, *cmd[1:]], repo, DVC_ENV)
    assert report.read_bytes() == by_flow
    assert json.loads(run_cmd(["dvc", "status", "--json"], repo, DVC_ENV).stdout) == {}

    # the model trained on this data becomes champion; a run with nothing new compares nothing (it used
    # to compare the new champion's data with itself) and says what the last comparison found
    register_version(
        uri, NAME, profile=json.loads((repo / "data" / "processed" / "profile.json").read_text())
    )
    noop = retrain(root=str(repo))
    assert stage_names(noop) == {"drift": "skipped", "train": "skipped"} and noop["up_to_date"]
    assert report.read_bytes() == by_flow
    md = noop["markdown"]
    assert (
        "Drift against champion v1 (before training, unchanged since the last run): recorded outcome **warn**"
        in md
    ), md
    assert "this run" not in md and "vs 0" not in md
