"""`kill -9` of `ftpipe run` leaves nothing running and no -S value behind (issue #34, item 5).

SIGKILL runs no handler: before, the temporary Prefect server kept running with parent pid 1, and the
orphaned `dvc repro` finished its stage with the `-S` value and wrote it into dvc.lock. The run's
watchdog (flows/watchdog.py) sees the run's end and stops what it started, then puts params.yaml back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]


def test_kill_9_of_ftpipe_run_stops_its_server_and_stage_and_puts_params_back(
    tiny_repo: Path, tmp_path: Path
) -> None:
    dvc_yaml = tiny_repo / "dvc.yaml"
    dvc_yaml.write_text(
        dvc_yaml.read_text().replace(
            "cmd: python step.py prepare",
            "cmd: python -c \"import pathlib, time; pathlib.Path('started').touch(); time.sleep(600)\" "
            "&& python step.py prepare",
        )
    )
    params = tiny_repo / "params.yaml"
    before = params.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # its own temporary server, as a user gets
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.commands.cli", "run", "--root", str(tiny_repo), "-S", "train.factor=3"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so the test can clean up whatever is left
    )
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        while not (tiny_repo / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-3000:]
            time.sleep(0.5)
        assert b"factor: 3" in params.read_bytes()  # the override is in place while the stage runs
        started = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "flows.watchdog" not in " ".join(p.cmdline())
        ]
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "uvicorn" in names and "dvc repro" in names and "time.sleep(600)" in names
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        _, alive = psutil.wait_procs(started, timeout=30)
        assert not alive, [" ".join(p.cmdline()) for p in alive]
        deadline = time.monotonic() + 10
        while params.read_bytes() != before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert params.read_bytes() == before
        lock = tiny_repo / "dvc.lock"
        assert not lock.exists() or "factor: 3" not in lock.read_text()
    finally:
        for p in started:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
