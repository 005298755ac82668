"""`ftpipe run` as a process: one run at a time per workspace, killing it stops what it started, no telemetry.

Real processes throughout: a second Python process holds the workspace lock, a real `ftpipe run` (with
its temporary Prefect server and its dvc child) is killed with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from flows.commands.cli import build_parser, main
from flows.lock import WorkspaceBusy, workspace_lock

REPO = Path(__file__).resolve().parents[2]

HOLD = """\
import sys, time
from flows.lock import workspace_lock
with workspace_lock(sys.argv[1], command="ftpipe run -S finetune.epochs=250"):
    print("held", flush=True)
    time.sleep(120)
"""


def cli(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def other_run(tiny_repo: Path):
    """Another process holding the tiny repo's run lock."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tiny_repo)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_run_stops_naming_the_holder_and_leaves_params_alone(
    prefect_harness, tiny_repo: Path, other_run: subprocess.Popen, capsys
) -> None:
    params = tiny_repo / "params.yaml"
    before = params.read_bytes()
    assert cli("run", "--root", str(tiny_repo), "-S", "train.factor=3") == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"in use by another run (pid {other_run.pid} on " in err
    assert "command `ftpipe run -S finetune.epochs=250`" in err and ", started 20" in err
    assert params.read_bytes() == before  # the -S trial never wrote it
    assert not (tiny_repo / "dvc.lock").exists()  # nothing ran

    from flows.retrain import retrain  # a scheduled run takes the same lock in the flow itself

    with pytest.raises(WorkspaceBusy, match=f"pid {other_run.pid}"):
        retrain(root=str(tiny_repo), overrides=["train.factor=4"])
    assert params.read_bytes() == before

    other_run.kill()  # the holder dies: the system drops its lock, nothing stale is left
    other_run.wait()
    with workspace_lock(tiny_repo):
        with workspace_lock(tiny_repo):  # nested in one thread (`ftpipe run`, then its flow)
            pass


def test_killing_ftpipe_run_stops_its_prefect_server_and_its_stage(tiny_repo: Path, tmp_path: Path) -> None:
    dvc_yaml = tiny_repo / "dvc.yaml"
    dvc_yaml.write_text(
        dvc_yaml.read_text().replace(
            "cmd: python step.py prepare",
            "cmd: python -c \"import pathlib, time; pathlib.Path('started').touch(); time.sleep(600)\" "
            "&& python step.py prepare",
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # its own temporary server, as a user gets
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"  # a fresh database on a busy machine
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.commands.cli", "run", "--root", str(tiny_repo)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so the test can clean up whatever is left
    )
    try:
        deadline = time.monotonic() + 240
        while not (tiny_repo / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-3000:]
            time.sleep(0.5)
        started = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "uvicorn" in names and "dvc repro" in names and "time.sleep(600)" in names
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        _, alive = psutil.wait_procs(started, timeout=20)
        assert not alive, [" ".join(p.cmdline()) for p in alive]
        with workspace_lock(tiny_repo):  # and the lock went with it
            pass
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for child in psutil.Process().children(recursive=True):
            try:  # a child gone or a zombie (another test's, not yet reaped) has nothing to stop
                if child.pid != proc.pid and "time.sleep(600)" in " ".join(child.cmdline()):
                    child.kill()
            except psutil.Error:
                pass


def test_the_cli_turns_telemetry_off_before_prefect_is_imported(tiny_repo: Path, monkeypatch) -> None:
    """Outside `make` Prefect's telemetry wrote to its database and printed "database is locked"."""
    for key in ("PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(SystemExit):
        main(["check", "--root", str(tiny_repo)])
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and os.environ["DO_NOT_TRACK"] == "1"
