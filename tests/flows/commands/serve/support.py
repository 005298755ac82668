"""Helpers for `ftpipe serve`'s tests: tiny versions registered by the register stage's own code, the
server started as a real process on a free 127.0.0.1 port, and plain HTTP to it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stages.config.register import GateParams, RegisterParams
from stages.registry.inputs import load_candidate, trained_on_from_splits
from stages.registry.register_run import register
from tests.conftest import REPO
from tests.registry_support import Workspace, free_port

TRUNC = {"max_length": 128, "truncation": "head", "head_fraction": 0.25}


def register_versions(root: Path, uri: str, name: str, n: int) -> Workspace:
    """`n` versions of tiny constant classifiers (no training: fast) registered as `name` in `uri`."""
    ws = Workspace(root / "ws")
    p = RegisterParams(
        model_name=name,
        gate=GateParams(min_primary=0.0, baseline_tolerance=1.0, baseline_margin=-1.0),
        retries=0,
        verify_rows=8,
    )
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        for i in range(1, n + 1):
            paths = ws.candidate(f"v{i}", "constant", seed=i)
            cand = load_candidate(
                paths["model"], paths["metrics"], paths["predictions"], paths["splits"], paths["labels"]
            )
            report = register(
                p,
                cand,
                uri,
                params={"register": p.model_dump()},
                truncation=TRUNC,
                trained_on=trained_on_from_splits(ws.splits),
                repo=REPO,
            )
            assert report["action"] == "registered", report
    finally:
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = old
    return ws


def request(
    url: str, body: Any = None, raw: bytes | None = None, timeout: float = 30
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded JSON) of a GET (no body) or a POST of `body` as JSON (or `raw` bytes)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


def copy_version(client: Any, root: Path, name: str, version: str, weights_byte: bool = False) -> str:
    """A new version of `name` whose files are a copy of `version`'s (its tags, manifest and smoke record
    included), so a test can change them without touching the original; `weights_byte`: one byte of the
    copy's weights changed. Cheaper than registering again; the new version's number."""
    import shutil
    from urllib.parse import unquote, urlparse

    mv = client.get_model_version(name, version)
    src = Path(unquote(urlparse(client.get_model_version_download_uri(name, version)).path))
    dst = root / f"copy-of-{version}-{time.monotonic_ns()}"
    shutil.copytree(src, dst)
    if weights_byte:
        (weights,) = dst.rglob("model.safetensors")
        data = bytearray(weights.read_bytes())
        data[-100] ^= 1
        weights.write_bytes(bytes(data))
    new = client.create_model_version(name, str(dst), run_id=mv.run_id, tags=dict(mv.tags))
    return str(new.version)


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    workspace: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def version(self) -> dict[str, Any]:
        return request(f"{self.url}/version")[2]

    def wait_for(self, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
        """Poll /version until `predicate(status)` holds; the status."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.output()
            status = self.version()
            if predicate(status):
                return status
            assert time.monotonic() < deadline, f"{what} not seen in {timeout} s: {status}\n{self.output()}"
            time.sleep(0.2)

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


@contextlib.contextmanager
def serve(workspace: Path, uri: str, name: str, serve: dict[str, Any], *args: str) -> Iterator[Server]:
    """`ftpipe serve` for `name` in `uri`, run in `workspace` (its params.yaml: `serve`), ready to answer."""
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "params.yaml").write_text(
        yaml.safe_dump({"register": {"model_name": name, "retries": 0}, "serve": serve})
    )
    port = free_port()
    log = workspace / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({"MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(REPO)})
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.commands.cli", "serve", "--port", str(port), *args],
            cwd=workspace,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log, workspace)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, server.output()
            with contextlib.suppress(OSError, ValueError):
                if request(f"{server.url}/ready", timeout=5)[0] == 200:
                    break
            assert time.monotonic() < deadline, "ftpipe serve did not become ready:\n" + server.output()
            time.sleep(0.3)
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def app_running(app: Any) -> Iterator[tuple[str, Any]]:
    """`app` served by uvicorn in a thread on a free 127.0.0.1 port, once /ready answers 200: (url, server)."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(f"{url}/ready")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield url, server
    finally:
        server.should_exit = True
        thread.join(timeout=30)
