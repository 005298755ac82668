"""Drift starts a retrain, once: prefect.yaml's trigger on a real `prefect server start` and process worker.

`prefect deploy --name scheduled-retrain` of the repository's own prefect.yaml (its trigger as shipped)
runs the retrain flow on the tiny pipeline of tests/flows/conftest.py (its first stage, to be quick). One `ftpipe.monitor.drift`
event, emitted by flows/commands/monitor/event.py in a process of its own as `ftpipe monitor` emits it,
creates exactly one flow run, which the worker runs; a second event inside `monitor.cooldown_hours`
creates none. A second automation on the same event (`within: 0`, do nothing) shows when the server has
evaluated the second event, so "none" is not a trigger service that had not looked yet.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from flows.commands.monitor.event import EVENT, resource_id
from stages.config.monitor import MonitorParams
from tests.flows.served import api, prefect_server, started

REPO = Path(__file__).resolve().parents[4]
DEPLOYMENT = "scheduled-retrain"
POOL = "ftpipe-process"  # prefect.yaml's work pool
# the monitor's own code, in a process of its own that exits (its events are flushed at exit)
EMIT = (
    "import sys; from flows.commands.monitor.event import emit_drift; "
    "from tests.flows.commands.monitor.test_monitor_event import report; "
    "sys.exit(0 if emit_drift(report('fail'), 'tiny') else 1)"
)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll `probe` every half second until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value


def prefect(env: dict[str, str], *args: str) -> None:
    """The `prefect` command, from the repository root (prefect.yaml's `{{ $PWD }}` is read from PWD)."""
    cmd = [sys.executable, "-m", "prefect", *args]
    done = subprocess.run(cmd, cwd=REPO, env={**env, "PWD": str(REPO)}, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def emit(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", EMIT], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"the drift event was not emitted:\n{done.stderr[-3000:]}"


def actions_of(url: str, automation_id: str) -> int:
    """How many times the automation has acted (its `prefect.automation.action.executed` events)."""
    body = {
        "filter": {
            "event": {"name": ["prefect.automation.action.executed"]},
            "resource": {"id": [f"prefect.automation.{automation_id}"]},
        },
        "limit": 50,
    }
    return len(api(url, "/events/filter", body)["events"])


def sentinel(url: str) -> str:
    """An automation that acts on every drift event (no window): it shows the server has evaluated one."""
    trigger = {
        "type": "event",
        "match": {"prefect.resource.id": resource_id("*")},
        "expect": [EVENT],
        "posture": "Reactive",
        "threshold": 1,
        "within": 0,
    }
    body = {"name": "sentinel", "trigger": trigger, "actions": [{"type": "do-nothing"}]}
    return str(api(url, "/automations/", body)["id"])


def deploy(url: str, env: dict[str, str], root: Path) -> tuple[str, dict[str, Any]]:
    """`prefect deploy` prefect.yaml's retrain deployment (on `root`); its id and its trigger's automation."""
    shipped = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    (spec,) = shipped[DEPLOYMENT]["triggers"]
    assert shipped[DEPLOYMENT]["work_pool"]["name"] == POOL
    api(url, "/work_pools/", {"name": POOL, "type": "process"})
    prefect(
        env, "deploy", "--name", DEPLOYMENT, "--params", json.dumps({"root": str(root), "target": "prepare"})
    )
    (dep,) = api(url, "/deployments/filter", {"deployments": {"name": {"any_": [DEPLOYMENT]}}})
    (automation,) = api(url, "/automations/filter")
    assert automation["actions"][0]["deployment_id"] == dep["id"]
    params = yaml.safe_load((REPO / "params.yaml").read_text())["monitor"]
    trigger, cooldown = automation["trigger"], MonitorParams.model_validate(params).cooldown_hours
    assert trigger["expect"] == spec["expect"] == [EVENT] and trigger["posture"] == "Reactive"
    assert trigger["threshold"] == 1 and trigger["within"] == spec["within"] == cooldown * 3600
    return str(dep["id"]), automation


def test_one_drift_event_starts_one_retrain_and_a_second_inside_the_cooldown_none(
    tiny_repo: Path, tmp_path: Path
) -> None:
    quick = {"PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "1"}
    with prefect_server(tmp_path, {**quick, "DVC_NO_ANALYTICS": "1"}) as (url, env):
        dep, automation = deploy(url, env, tiny_repo)
        watch = sentinel(url)

        def runs(*states: str) -> list[dict[str, Any]]:
            found = api(url, "/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [dep]}}})
            return [r for r in found if not states or r["state_type"] in states]

        worker = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "process"]
        with started(worker, env, tmp_path / "worker.log") as proc:
            emit(env)
            (run,) = wait_for("the retrain flow run", runs)
            (ended,) = wait_for("the worker to run it", lambda: runs("COMPLETED", "FAILED", "CRASHED"), 120)
            assert ended["state_type"] == "COMPLETED", (tmp_path / "worker.log").read_text()[-3000:]
            assert proc.poll() is None
            emit(env)
            wait_for("the server to evaluate the second event", lambda: actions_of(url, watch) == 2)
            time.sleep(3)  # what the retrain automation would have started by now
            assert [r["id"] for r in runs()] == [run["id"]]
            assert actions_of(url, automation["id"]) == 1
