"""The retrain flow against a tiny git+DVC repo: DAG from dvc.yaml, skip vs run, failures, overrides.

One test also serves the flow on a real `prefect server start` and watches two scheduled runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from flows.commands.cli import build_parser
from flows.dag import RetrainError, read_dag, select_stages
from flows.params import OverrideError, load_retrain_params
from flows.runner import StageFailed, StageOutcome, run_stage, stage_error
from flows.summary import build_summary, render_markdown
from stages.config.retrain import RetrainParams
from tests.conftest import run_cmd
from tests.flows.served import api, served_flow

REPO = Path(__file__).resolve().parents[2]


def stages_of(summary: dict) -> dict[str, str]:
    return {
        s["name"]: ("ran, changed nothing" if s["changed_nothing"] else s["status"])
        for s in summary["stages"]
    }


# ------------------------------------------------------------------------------ pure parts


def test_dag_comes_from_dvc_yaml_in_dependency_order(tiny_repo: Path) -> None:
    dag = read_dag(tiny_repo)
    assert [s.name for s in dag] == ["prepare", "train", "report", "register"]  # dvc.yaml lists report first
    by = {s.name: s for s in dag}
    assert by["train"].upstream == ("prepare",) and by["register"].upstream == ("report",)
    assert by["register"].always_changed and by["register"].json_outputs == ("reports/registry.json",)
    assert [s.name for s in select_stages(dag, "train")] == ["prepare", "train"]
    with pytest.raises(RetrainError, match="unknown target stage `nope`; dvc.yaml has: prepare, train"):
        select_stages(dag, "nope")


def test_stage_error_is_the_stages_own_message() -> None:
    tb = [
        "12:00:01 clean INFO reading data/raw",
        "Traceback (most recent call last):",
        '  File "stages/clean.py", line 9, in <module>',
        "    raise CleanError(msg)",
        "stages.clean.CleanError: clean: 45% of rows rejected (too short: 900); raise clean.max_reject_fraction",
        "ERROR: failed to reproduce 'clean': failed to run: python -m stages.clean, exited with 1",
    ]
    assert (
        stage_error(tb)
        == "CleanError: clean: 45% of rows rejected (too short: 900); raise clean.max_reject_fraction"
    )
    assert stage_error(["some warning", "bad thing happened"]) == "some warning\nbad thing happened"
    assert stage_error(["ERROR: 'data.txt' does not exist"]) == "'data.txt' does not exist"


def test_what_ran_comes_from_dvcs_state_not_its_prose(tiny_repo: Path) -> None:
    """ran / skipped / restored from `dvc status` and the run cache, whatever DVC prints."""
    prepare = read_dag(tiny_repo)[0]
    said: list[str] = []
    assert run_stage(prepare, tiny_repo, log=said.append).status == "ran"
    assert run_stage(prepare, tiny_repo, log=said.append).status == "skipped"
    (tiny_repo / "data.txt").write_text("alpha\nbeta\ngamma\n")
    assert run_stage(prepare, tiny_repo, log=said.append).status == "ran"
    (tiny_repo / "data.txt").write_text("alpha\nbeta\n")  # back to inputs DVC's run cache has seen
    assert run_stage(prepare, tiny_repo, log=said.append).status == "restored"
    assert (tiny_repo / "prepared.txt").read_text() == "alpha\nbeta prepare"
    assert run_stage(prepare, tiny_repo, force=True, log=said.append).status == "ran"
    (tiny_repo / "prepared.txt").unlink()  # an output deleted by hand: checked out from the cache
    assert run_stage(prepare, tiny_repo, log=said.append).status == "restored"


def test_summary_shows_the_data_profile_and_a_failed_check(tiny_repo: Path) -> None:
    """The retrain summary carries validate's headline figures and, when it stops the run, its reasons."""
    reports = tiny_repo / "reports"
    reports.mkdir(exist_ok=True)
    profile = {
        "headline": {
            "passed": False,
            "checks": 12,
            "failed": 1,
            "rows": {"train": 70, "validation": 15, "test": 15},
            "batches": 2,
            "median_chars": 1900.0,
            "median_tokens": 420.0,
            "truncated_share": 0.03,
            "unk_share": 0.0,
        },
        "checks": [
            {"outcome": "fail", "message": "batch file `2026-11.csv`: median text length 10 characters"}
        ],
    }
    (reports / "data_profile.json").write_text(json.dumps(profile))
    (reports / "label.json").write_text(
        json.dumps(
            {
                "movement": {
                    "new": {"train": 14, "validation": 3, "test": 3},
                    "changed_side": {"train": 0},
                    "removed": 0,
                }
            }
        )
    )
    dag = read_dag(tiny_repo)
    dag[0] = dataclasses.replace(dag[0], json_outputs=("reports/data_profile.json", "reports/label.json"))
    summary = build_summary(tiny_repo, dag, [StageOutcome(dag[0].name, "failed", error="ValidateError: ...")])
    assert summary["data"]["new_rows"]["train"] == 14 and summary["data_fresh"]
    text = render_markdown(summary)
    assert "validate: **1 check(s) FAILED** of 12" in text and "| train | 70 | 14 | 0 |" in text
    assert "- batch file `2026-11.csv`: median text length 10 characters" in text


def test_summary_shows_a_length_limit_that_cut_a_class(tiny_repo: Path) -> None:
    """Issue 13: clean.min_chars cut 11.5% of a Chinese dataset and the run went on without a word."""
    reports = tiny_repo / "reports"
    reports.mkdir(exist_ok=True)
    message = (
        "clean.min_words removed 9 of 60 `proverb` rows (15.0% > clean.warn_class_fraction 0.03); see ..."
    )
    (reports / "clean.json").write_text(
        json.dumps({"length_warnings": [{"label": "proverb", "message": message}]})
    )
    dag = read_dag(tiny_repo)
    dag[0] = dataclasses.replace(dag[0], json_outputs=("reports/clean.json",))
    summary = build_summary(tiny_repo, dag, [StageOutcome(dag[0].name, "ran")])
    assert summary["data_warnings"] == [message]
    assert f"- {message}" in render_markdown(summary)


def test_shipped_params_and_prefect_yaml_agree() -> None:
    params = load_retrain_params(REPO)
    assert isinstance(params, RetrainParams)
    deployment = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"][0]
    assert deployment["entrypoint"] == "flows/retrain.py:retrain"
    assert deployment["schedules"][0]["cron"] == params.schedule_cron
    assert deployment["schedules"][0]["timezone"] == params.timezone

    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(str(REPO / "flows/retrain.py") + ":retrain")
    assert flow.name == "retrain" and set(flow.parameters.properties) == {
        "root",
        "force",
        "target",
        "overrides",
    }


def test_cli_parses_run_and_serve_schedule_needs_a_server(tiny_repo: Path) -> None:
    args = build_parser().parse_args(["run", "--force", "--target", "train", "-S", "a.b=1", "-S", "c=[x, y]"])
    assert (args.force, args.target, args.overrides) == (True, "train", ["a.b=1", "c=[x, y]"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tiny_repo / ".prefect-home")  # no profile that could name a server
    proc = subprocess.run(
        [sys.executable, "-m", "flows.commands.cli", "serve-schedule", "--root", str(tiny_repo)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "PREFECT_API_URL is not set" in proc.stderr and "prefect server start" in proc.stderr


# ------------------------------------------------------------------- the flow (test harness)


def test_runs_then_skips_then_retrains_on_new_data(prefect_harness, tiny_repo: Path) -> None:
    from flows.retrain import retrain

    first = retrain(root=str(tiny_repo))
    assert stages_of(first) == dict.fromkeys(["prepare", "train", "report", "register"], "ran")
    assert first["registry"]["action"] == "registered" and first["metrics_fresh"]
    md = first["markdown"]
    assert "**Ran 4 of 4 stages**" in md and "| **macro_f1** | 0.5400 | 0.6000 | -0.0600 |" in md
    assert "| floor | pass | macro_f1 above 0.5 |" in md and "promoted to champion" in md
    status = json.loads(
        run_cmd(["dvc", "status", "--json"], cwd=tiny_repo, env={"DVC_NO_ANALYTICS": "1"}).stdout
    )
    assert status == {"register": ["always changed"]}  # dvc.lock is up to date: DVC kept it

    (tiny_repo / ".model.txt.tmp-k1ll").write_text("half")  # what kill -9 mid-write leaves behind
    (tiny_repo / "reports" / ".metrics.json.tmp-k1ll").write_text("{")
    second = retrain(root=str(tiny_repo))
    assert not list(tiny_repo.glob(".*.tmp-*")) and not list(tiny_repo.glob("reports/.*.tmp-*"))
    assert stages_of(second) == {
        "prepare": "skipped",
        "train": "skipped",
        "report": "skipped",
        "register": "ran, changed nothing",
    }
    assert second["up_to_date"] and second["changed_stages"] == []
    assert "**Up to date**" in second["markdown"] and "Nothing new" in second["markdown"]
    assert "nothing new (this model is already registered)" in second["markdown"]

    (tiny_repo / "data.txt").write_text("alpha\nbeta\ngamma\n")  # new data lands
    third = retrain(root=str(tiny_repo))
    assert stages_of(third) == dict.fromkeys(["prepare", "train", "report", "register"], "ran")
    assert third["registry"]["action"] == "registered" and third["registry"]["version"] == "2"

    from prefect.artifacts import Artifact

    artifact = Artifact.get("retrain-summary")
    assert artifact is not None and "**Ran 4 of 4 stages**" in artifact.data

    # the flow adds no retry layer: a registry failure is retried inside the stage (its own policy), and
    # when the stage gives up, the run fails with the stage's message
    (tiny_repo / ".flaky").write_text("register fails once")
    with pytest.raises(StageFailed, match="stage 'register' failed: ConnectionError: registry unreachable"):
        retrain(root=str(tiny_repo))


def test_failing_stage_fails_the_flow_with_its_own_message(prefect_harness, tiny_repo: Path, capsys) -> None:
    (tiny_repo / "data.txt").write_text("alpha\nbeta\nFAIL\n")
    args = build_parser().parse_args(["run", "--root", str(tiny_repo)])
    assert args.func(args) == 1
    out, err = capsys.readouterr()
    last = err.strip().splitlines()[-1]
    assert last == (
        "ftpipe run: stage 'prepare' failed: ValueError: prepare: data.txt line 3 says FAIL; "
        "remove that line and run again"
    )
    assert "**FAILED** at stage `prepare` (the error follows the summary)" in out  # said once, last
    assert "| train | not run | — |" in out

    from flows.retrain import retrain

    state = retrain(root=str(tiny_repo), target="prepare", return_state=True)
    assert (
        state.is_failed() and "stage 'prepare' failed: ValueError: prepare: data.txt line 3" in state.message
    )
    with pytest.raises(StageFailed) as exc:
        state.result()
    assert exc.value.stage == "prepare"


def test_overrides_target_and_force(prefect_harness, tiny_repo: Path) -> None:
    from flows.retrain import retrain

    s = retrain(root=str(tiny_repo), target="train", overrides=["train.factor=2"])
    # report and register are not part of the target
    assert stages_of(s) == {"prepare": "ran", "train": "ran"}
    assert s["overrides"] == [{"file": "params.yaml", "key": "train.factor", "old": 1, "new": 2}]
    params_text = (tiny_repo / "params.yaml").read_text()
    assert "factor: 1" in params_text and "# how many times train repeats its input" in params_text
    assert (tiny_repo / "model.txt").read_text() == "alpha\nbeta prepare train alpha\nbeta prepare train"
    assert "`train.factor`: 1 -> 2" in s["markdown"]

    # the same value again: nothing to do
    s = retrain(root=str(tiny_repo), target="train", overrides=["train.factor=2"])
    assert stages_of(s) == {"prepare": "skipped", "train": "skipped"} and s["up_to_date"]

    s = retrain(root=str(tiny_repo), target="prepare", force=True)
    assert stages_of(s) == {"prepare": "ran"}

    with pytest.raises(OverrideError, match=r"params.yaml has no key `train\.nope`") as refused:
        retrain(root=str(tiny_repo), overrides=["train.nope=3"])
    assert "+train.nope" not in str(refused.value)  # ftpipe's words, not Hydra's hint (issue #33, item 5)
    with pytest.raises(OverrideError, match="must look like key=value"):
        retrain(root=str(tiny_repo), overrides=["train.factor"])


# -------------------------------------------------------------- schedules on a real Prefect server


def test_served_schedule_runs_then_skips_every_stage(tiny_repo: Path, tmp_path: Path) -> None:
    with served_flow(tmp_path, tiny_repo, interval=12) as served:
        deadline = time.monotonic() + 180
        done: list[dict] = []
        while len(done) < 2:
            assert served.proc.poll() is None, served.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no two completed runs:\n" + served.log.read_text()[-3000:]
            time.sleep(1)
            runs = api(served.url, "/flow_runs/filter", {"sort": "EXPECTED_START_TIME_ASC"})
            bad = [r for r in runs if r["state_type"] in ("FAILED", "CRASHED")]
            assert not bad, f"{bad[0]['state']['message']}\n{served.log.read_text()[-3000:]}"
            done = [r for r in runs if r["state_type"] == "COMPLETED"]
        summaries = []
        for run in done[:2]:
            assert run["deployment_id"] is not None  # a scheduled run of the served deployment
            arts = api(served.url, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
            summaries.append(arts[0]["data"])
    assert "**Ran 4 of 4 stages**" in summaries[0]
    assert "**Up to date**" in summaries[1] and "Nothing new" in summaries[1]
