"""`ftpipe promote | rollback | history`: the pure history logic, then the commands on a real MLflow server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flows.commands.cli import main as ftpipe
from flows.commands.registry import format_history
from stages.config.register import GateParams, RegisterParams
from stages.registry.client import (
    champion_stack,
    check_promotable,
    history_from_tags,
    make_event,
    next_history_key,
    rollback_target,
)
from stages.registry.inputs import load_candidate
from stages.registry.register_run import register
from stages.registry.tracking import RegistryError
from tests.conftest import REPO
from tests.registry_support import Proxy, Workspace, hanging_server

PASSWORD = "".join(["s3", "cret"])  # spelled apart, so a traceback's source lines never hold it


def ev(action: str, frm: str | None, to: str) -> dict[str, Any]:
    return make_event(action, frm, to, "because", who="ana", at="2026-01-01T00:00:00+00:00")


def test_champion_stack_replays_promotions_and_rollbacks() -> None:
    events = [ev("gate", None, "1"), ev("gate", "1", "2"), ev("promote", "2", "4")]
    assert champion_stack(events) == ["1", "2", "4"]
    assert rollback_target(events, "4") == "2"
    events.append(ev("rollback", "4", "2"))
    assert champion_stack(events) == ["1", "2"] and rollback_target(events, "2") == "1"
    events.append(ev("rollback", "2", "1"))
    with pytest.raises(RegistryError, match="first champion"):
        rollback_target(events, "1")
    with pytest.raises(RegistryError, match="no champion"):
        rollback_target([], None)
    # an alias moved outside ftpipe counts as the current champion
    assert rollback_target([ev("gate", None, "1")], "7") == "1"


def test_history_tags_round_trip_in_order() -> None:
    tags: dict[str, str] = {"other": "x"}
    for e in (ev("gate", None, "1"), ev("promote", "1", "2")):
        tags[next_history_key(tags)] = json.dumps(e)
    assert sorted(tags) == ["ftpipe.history.000001", "ftpipe.history.000002", "other"]
    assert [e["to"] for e in history_from_tags(tags)] == ["1", "2"]
    text = format_history(history_from_tags(tags), "2", "3")
    assert "champion: 2   challenger: 3" in text and "1 -> 2" in text and "ana" in text


def test_check_promotable_refuses_unusable_versions() -> None:
    check_promotable("2", "READY", "complete", "1")
    check_promotable("2", "READY", None, None)  # registered outside ftpipe: allowed
    with pytest.raises(RegistryError, match="already the champion"):
        check_promotable("1", "READY", "complete", "1")
    with pytest.raises(RegistryError, match="not READY"):
        check_promotable("2", "PENDING_REGISTRATION", None, "1")
    with pytest.raises(RegistryError, match="broken"):
        check_promotable("2", "READY", "broken", "1")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str) -> dict[str, Any]:
    """Model `cli-registry` with v1 (constant, champion by the gate) and v2 (wrong, refused challenger)."""
    import mlflow

    ws = Workspace(tmp_path_factory.mktemp("registry-ws"))
    gate = GateParams(min_primary=0.1, baseline_tolerance=1.0, baseline_margin=-1.0, min_improvement=0.0)
    p = RegisterParams(model_name="cli-registry", gate=gate, retries=0, verify_rows=8)
    trunc = {"max_length": 128, "truncation": "head", "head_fraction": 0.25}
    for kind in ("constant", "wrong"):
        c = ws.candidate(kind, kind)
        cand = load_candidate(c["model"], c["metrics"], c["predictions"], c["splits"], c["labels"])
        register(p, cand, mlflow_server, params={}, truncation=trunc)
    mlflow.set_tracking_uri(None)
    return {"name": "cli-registry", "uri": mlflow_server}


@pytest.fixture
def cli_env(registry: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry["uri"])
    monkeypatch.setenv("USER", "test-operator")
    return registry


def run(*args: str) -> int:
    try:
        ftpipe(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_promote_rollback_history(cli_env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from mlflow import MlflowClient

    name = cli_env["name"]
    client = MlflowClient(cli_env["uri"])
    assert run("promote", "2", "--reason", "hand-checked on fresh data", "--name", name) == 0
    out = capsys.readouterr().out
    assert "champion 1 -> 2" in out and "overruling the gate's verdict: reject" in out
    assert client.get_model_version_by_alias(name, "champion").version == "2"

    assert run("promote", "2", "--reason", "again", "--name", name) == 0  # a no-op: no history event
    assert "version 2 is already the champion; nothing changed" in capsys.readouterr().out
    assert run("promote", "9", "--reason", "typo", "--name", name) == 2
    assert "no version 9; `ftpipe history --versions` lists the versions" in capsys.readouterr().err

    assert run("rollback", "--reason", "v2 misroutes tech", "--name", name) == 0
    assert "rolled back champion 2 -> 1" in capsys.readouterr().out
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert run("rollback", "--reason", "once more", "--name", name) == 2
    assert "first champion" in capsys.readouterr().err

    assert run("history", "--name", name, "--json") == 0
    hist = json.loads(capsys.readouterr().out)
    assert hist["champion"] == "1" and hist["challenger"] == "2"
    assert [(e["action"], e["from"], e["to"]) for e in hist["history"]] == [
        ("gate", None, "1"),
        ("promote", "1", "2"),
        ("rollback", "2", "1"),
    ]
    assert hist["history"][1]["who"] == "test-operator"
    assert hist["history"][1]["reason"] == "hand-checked on fresh data"
    assert run("history", "--name", name) == 0
    text = capsys.readouterr().out
    assert "2 -> 1" in text and "v2 misroutes tech" in text

    assert run("history", "--name", name, "--versions") == 0
    table = capsys.readouterr().out.split("\n\n")[-1].strip().splitlines()
    assert table[0].split() == ["version", "registered", "status", "gate", "test", "accuracy", "test"] + [
        "macro_f1",
        "aliases",
    ]
    v1, v2 = (row.split() for row in table[1:])
    assert (v1[0], v1[3:5], v1[-1]) == ("1", ["complete", "promote"], "champion")
    assert (v2[0], v2[3:5], v2[-1]) == ("2", ["complete", "reject"], "challenger")
    assert run("history", "--name", name, "--versions", "--json") == 0
    listed = json.loads(capsys.readouterr().out)["versions"]
    assert [(v["version"], v["gate"], v["aliases"]) for v in listed] == [
        ("1", "promote", ["champion"]),
        ("2", "reject", ["challenger"]),
    ]
    assert all(0 <= v["test_accuracy"] <= 1 and 0 <= v["test_macro_f1"] <= 1 for v in listed)


def test_commands_report_an_unreachable_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    from tests.registry_support import free_port

    port = free_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    params = tmp_path / "params.yaml"
    params.write_text("register:\n  model_name: m\n  retries: 0\n")
    assert run("history", "--params", str(params)) == 2
    assert f"127.0.0.1:{port} did not answer" in capsys.readouterr().err


# --------------------------------------------------------------------------- the registry under faults


def _promote_killed(uri: str, name: str, version: str, at: str, tmp: Path) -> subprocess.CompletedProcess:
    """`ftpipe promote VERSION` in its own process, SIGKILLed by a proxy in front of the server: before
    its alias move reaches the server (`at="alias"`), or right after it (`at="confirm"`)."""
    moved = []

    def rule(method: str, path: str) -> str:
        if method == "POST" and path.endswith("/registered-models/alias"):
            if at == "alias":
                return "kill"
            moved.append(path)
        elif moved and method == "POST" and path.endswith("/registered-models/set-tag"):
            return "kill"
        return "forward"

    proxy = Proxy(uri, rule)
    try:
        cmd = [sys.executable, "-m", "flows.commands.cli", "promote", version, "--reason", f"killed at {at}"]
        proc = subprocess.Popen(
            [*cmd, "--name", name, "--params", str(tmp / "absent.yaml")],
            cwd=REPO,
            env={**os.environ, "MLFLOW_TRACKING_URI": proxy.uri(f"ftp:{PASSWORD}")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        proxy.pid = proc.pid
        out, err = proc.communicate(timeout=180)
    finally:
        proxy.close()
    assert proc.returncode == -9, err[-2000:]
    assert PASSWORD not in out + err
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_a_kill_between_the_alias_and_its_history_event_is_reconciled(
    cli_env: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The history event is written as an intent before the alias moves and confirmed after: killed
    before the move, the next command marks it not applied; killed after the move, it confirms it. The
    audit trail never misses a champion change, and rollback replays only the changes that happened."""
    from mlflow import MlflowClient

    name, uri = cli_env["name"], cli_env["uri"]
    client = MlflowClient(uri, registry_uri=uri)

    def state() -> tuple[str, dict[str, Any]]:
        tags = client.get_registered_model(name).tags
        return client.get_model_version_by_alias(name, "champion").version, history_from_tags(tags)[-1]

    champ = state()[0]
    other = "2" if champ == "1" else "1"

    _promote_killed(uri, name, other, "alias", tmp_path)  # intent written, alias not moved
    now, last = state()
    assert now == champ and last["pending"] and last["to"] == other
    assert run("history", "--name", name, "--json") == 0  # the next command settles it
    hist = json.loads(capsys.readouterr().out)
    assert (
        hist["champion"] == champ
        and "interrupted before the alias moved" in hist["history"][-1]["not_applied"]
    )

    _promote_killed(uri, name, other, "confirm", tmp_path)  # alias moved, event not confirmed
    now, last = state()
    assert now == other and last["to"] == other and last["reason"] == "killed at confirm"
    assert run("history", "--name", name, "--json") == 0
    hist = json.loads(capsys.readouterr().out)
    settled = hist["history"][-1]
    assert hist["champion"] == other and settled["to"] == other
    assert "pending" not in settled and "not_applied" not in settled
    assert run("history", "--name", name) == 0
    assert "promote (not applied)" in capsys.readouterr().out

    assert run("rollback", "--reason", "back", "--name", name) == 0  # the not-applied event is skipped
    assert f"rolled back champion {other} -> {champ}" in capsys.readouterr().out


def test_history_against_a_hanging_server_stops_within_timeout_s(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("register:\n  model_name: m\n  timeout_s: 2\n  backoff_s: 0.2\n")
    with hanging_server() as port:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ftp:{PASSWORD}@127.0.0.1:{port}")
        t = time.monotonic()
        assert run("history", "--params", str(params)) == 2
        took = time.monotonic() - t
    err = capsys.readouterr().err
    assert took < 3.5, took
    assert f"ftpipe history: MLflow tracking store at http://ftp:***@127.0.0.1:{port} did not answer" in err
    assert "no answer in time" in err and PASSWORD not in err


def test_predict_against_a_hanging_server_ends_with_one_clear_line(
    prefect_harness: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Before: MLflow's own 7 retries of 120 s each, then the flow's retries, then a raw traceback."""
    from flows.commands.cli import build_parser

    params = tmp_path / "params.yaml"
    params.write_text("register:\n  model_name: m\n  timeout_s: 2\n  backoff_s: 0.2\n")
    (tmp_path / "in.csv").write_text("id,text\n1,some news about markets\n")
    with hanging_server() as port:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ftp:{PASSWORD}@127.0.0.1:{port}")
        args = build_parser().parse_args(
            ["predict", str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), "--params", str(params)]
        )
        t = time.monotonic()
        assert args.func(args) == 1
        took = time.monotonic() - t
    out, err = capsys.readouterr()
    assert took < 15, took  # 2 s on the store, the rest is Prefect starting the flow
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "ftpipe predict: cannot load models:/m@champion: MLflow tracking store at http://ftp:***@"
    )
    assert "no answer in time" in last and PASSWORD not in out + err
    assert not (tmp_path / "out.csv").exists()


def test_the_flow_masks_what_it_copies_from_a_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage's stderr reaches the Prefect logs, the failure message and the `retrain-summary` artifact
    through `_pump`: a password in it (MLflow's text, or the variable's value) is masked there."""
    import io

    from flows.runner import _pump, stage_error

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", f"pw-{PASSWORD}")
    stderr = (
        "Traceback (most recent call last):\n  File x\n"
        f"mlflow.exceptions.MlflowException: API request to http://ftp:{PASSWORD}@h:5000/api failed "
        f"(auth pw-{PASSWORD})\n"
    )
    sink: list[str] = []
    _pump(io.BytesIO(stderr.encode()), sink.append)
    assert PASSWORD not in "".join(sink)
    assert stage_error(sink) == "MlflowException: API request to http://ftp:***@h:5000/api failed (auth ***)"
