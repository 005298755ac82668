"""A real `prefect server` on 127.0.0.1 with the retrain flow served on an interval, for the flow tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(url: str, path: str, body: dict | None = None) -> Any:
    """POST `body` to the Prefect API at `url` + `path`; the decoded JSON answer."""
    req = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def stop(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and what it started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, (
            "prefect server did not become healthy:\n" + log.read_text()[-3000:]
        )
        time.sleep(0.5)


@dataclass
class Served:
    url: str  # the Prefect API
    proc: subprocess.Popen  # `ftpipe serve-schedule`
    log: Path  # its output


@contextlib.contextmanager
def started(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> Iterator[subprocess.Popen]:
    """`cmd` in its own session, its output in `log`; it and what it started are stopped at exit, always."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def prefect_server(
    tmp_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """`prefect server start` (its services included) on a free port of 127.0.0.1 with its own PREFECT_HOME.

    Yields the API URL and the environment for its clients (PREFECT_API_URL set); stopped at exit.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(
        {
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_RUNNER_POLL_FREQUENCY": "2",
            "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            **(extra_env or {}),
        }
    )
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with started(cmd, env, tmp_path / "server.log") as server:
        wait_healthy(url, server, tmp_path / "server.log")
        yield url, {**env, "PREFECT_API_URL": url}


@contextlib.contextmanager
def served_flow(
    tmp_path: Path, root: Path, interval: int, extra_env: dict[str, str] | None = None
) -> Iterator[Served]:
    """Start `prefect server start` and `ftpipe serve-schedule --interval` for `root`; stop both at exit."""
    serve_log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "flows.commands.cli", "serve-schedule", "--interval", str(interval)]
    with prefect_server(tmp_path, extra_env) as (url, env):
        with started([*cmd, "--root", str(root)], env, serve_log) as proc:
            yield Served(url, proc, serve_log)
