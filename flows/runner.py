"""Run one stage of the DAG through DVC and say what DVC did with it.

`run_stage` runs `dvc repro --single-item STAGE` in a child process group (so stopping the flow stops
the stage too) and streams its output to the log. What the stage's run amounts to is read from DVC's
own state before it starts, never from its prose: `Repo.status` (what `dvc status --json` prints) says
whether the stage is stale, and DVC's run cache (`stage_cache.restore(dry=True)`, what `dvc repro
--dry` consults) whether a stale stage will be restored rather than rerun.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from dvc.exceptions import DvcException
from dvc.repo import Repo
from dvc.stage.cache import RunCacheNotFoundError
from dvc_data.hashfile.hash_info import HashInfo

from flows.dag import StageSpec
from stages.core.redact import mask_secrets

STOP_GRACE_S = 10.0  # how long a stopped stage gets to exit after SIGTERM before SIGKILL


class StageFailed(RuntimeError):
    """A stage exited non-zero; `str()` is the stage's name and its own error message."""

    def __init__(self, stage: str, message: str, seconds: float = 0.0, stderr_tail: str = ""):
        super().__init__(f"stage '{stage}' failed: {message}")
        self.stage, self.message, self.seconds, self.stderr_tail = stage, message, seconds, stderr_tail


@dataclasses.dataclass
class StageOutcome:
    name: str
    status: str  # ran | skipped | restored | failed | not run
    seconds: float = 0.0
    changed_nothing: bool = False  # ran (always_changed) but its report says nothing changed
    error: str | None = None


def planned_status(root: str | Path, spec: StageSpec, force: bool = False) -> str:
    """What `dvc repro --single-item` is about to do with the stage: ran, restored or skipped.

    From DVC's machine-readable state: up to date in `dvc status` -> skipped; stale with an entry in
    the run cache for its current inputs (or its outputs merely deleted) -> restored; otherwise (and
    always under --force, which bypasses the run cache) -> ran.
    """
    if force:
        return "ran"
    dvcfile, _, name = spec.addressing.rpartition(":")
    target = f"{Path(root) / (dvcfile or 'dvc.yaml')}:{name}"  # DVC resolves a bare name from the cwd
    with Repo(str(root)) as repo:
        if not repo.status(targets=[target]):
            return "skipped"
        with repo.lock, _cwd(root), _quiet("dvc.stage.cache"):  # the run cache reads a cwd-relative dvc.yaml
            (stage,) = repo.stage.collect(target)
            if stage.changed_stage() or not stage.deps_cached():  # new inputs: look them up in the run cache
                stage.save_deps()  # their hashes, in memory only
                for out in stage.outs:
                    out.hash_info = HashInfo()  # so that the lookup goes by inputs, not by dvc.lock's outputs
            try:
                repo.stage_cache.restore(stage, dry=True)  # what `dvc repro` tries first
            except RunCacheNotFoundError:
                return "ran"
            except DvcException:  # a missing dependency and the like: DVC will say so when it runs
                return "ran"
    return "restored"


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Silence a DVC logger: a dry lookup logs as if it had restored."""
    log = logging.getLogger(logger)
    before = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(before)


@contextlib.contextmanager
def _cwd(path: str | Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def stage_env() -> dict[str, str]:
    """The environment of a stage: this interpreter's bin first (dvc.yaml says `python`), quiet bars."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TQDM_MININTERVAL", "10")  # a progress line every 10 s, not a flood in the logs
    env.setdefault("DVC_NO_ANALYTICS", "1")  # nothing leaves the machine
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    return env


def _pump(stream: IO[bytes], sink: list[str], log: Callable[[str], None]) -> None:
    """Copy a child's output to `sink` and `log`, line by line (carriage returns end a line too), with
    secrets masked: the stage's stderr reaches the Prefect logs and the summary artifact."""
    buf = b""
    for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
        buf += chunk
        *lines, buf = re.split(rb"[\r\n]", buf)
        for raw in lines:
            if line := mask_secrets(raw.decode("utf-8", "replace").rstrip()):
                sink.append(line)
                log(line)
    if line := mask_secrets(buf.decode("utf-8", "replace").rstrip()):
        sink.append(line)
        log(line)


def stage_error(stderr_lines: list[str]) -> str:
    """The stage's own error: the last exception line(s), or its last stderr lines, or DVC's error."""
    lines = [ln for ln in stderr_lines if ln.strip()]
    own = [ln for ln in lines if not ln.startswith("ERROR: ")]
    starts = [i for i, ln in enumerate(own) if ln.startswith("Traceback (most recent call last)")]
    if starts:
        body = own[starts[-1] + 1 :]
        first = next((i for i, ln in enumerate(body) if not ln.startswith((" ", "\t"))), None)
        if first is not None:
            msg = body[first : first + 20]
            msg[0] = re.sub(r"^(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*(?::|$))", "", msg[0])  # a.b.Error -> Error
            return "\n".join(msg)
    if own:
        return "\n".join(own[-5:])
    dvc_errors = [ln.removeprefix("ERROR: ") for ln in lines if ln.startswith("ERROR: ")]
    return dvc_errors[-1] if dvc_errors else "no error output"


def report_says_unchanged(root: Path, spec: StageSpec) -> bool:
    """True when one of the stage's JSON reports says `"action": "unchanged"` (e.g. register)."""
    for rel in spec.json_outputs:
        try:
            data = json.loads((root / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("action") == "unchanged":
            return True
    return False


def stop_group(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the child's process group (dvc and the stage command it runs), SIGKILL after `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_stage(
    spec: StageSpec, root: str | Path, force: bool = False, log: Callable[[str], None] = print
) -> StageOutcome:
    """Run one stage through `dvc repro --single-item`; raise StageFailed with its own message."""
    root = Path(root)
    status = planned_status(root, spec, force)
    cmd = [sys.executable, "-m", "dvc", "repro", "--single-item", spec.addressing]
    if force:
        cmd.append("--force")
    out: list[str] = []
    err: list[str] = []
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=root,
        env=stage_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: stopping the flow stops the whole stage
    )
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, out, log), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err, log), daemon=True),
    ]
    for t in pumps:
        t.start()
    try:
        rc = proc.wait()
    except BaseException:  # the flow is being stopped (SIGINT/SIGTERM): stop the stage with it
        stop_group(proc)
        raise
    for t in pumps:
        t.join()
    seconds = time.monotonic() - start
    if rc != 0:
        raise StageFailed(spec.name, stage_error(err), seconds, "\n".join(err[-20:]))
    changed_nothing = status == "ran" and spec.always_changed and report_says_unchanged(root, spec)
    return StageOutcome(spec.name, status, seconds, changed_nothing)
