"""Run one stage of the DAG through DVC and say what DVC did with it.

`run_stage` runs `dvc repro --single-item STAGE` in a child process group (so stopping the flow stops
the stage too) and keeps its output in `.dvc/tmp/ftpipe-logs/STAGE.log` (git-ignored, DVC's scratch
folder), shown as it comes only with `ftpipe -v`; the stage's WARNING lines are always passed on. A
stage that fails is reported once: its own error, with the log file named. `stale_stages` asks DVC once
per run which stages are stale, so the flow skips an up-to-date stage without starting DVC for it.
Another DVC process in the workspace (a `dvc repro` by hand) is named with its pid (`dvc_holders`),
not left as DVC's advice to delete its lock file. What the stage's run amounts to is read from DVC's
own state before it starts, never from its prose: `Repo.status` (what `dvc status --json` prints) says
whether the stage is stale, and DVC's run cache (`stage_cache.restore(dry=True)`, what `dvc repro
--dry` consults) whether a stale stage will be restored rather than rerun.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
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

import psutil

from flows.dag import RetrainError, StageSpec
from stages.config.params import ParamsError
from stages.core.notify import notify
from stages.core.redact import mask_secrets

STOP_GRACE_S = 10.0  # how long a stopped stage gets to exit after SIGTERM before SIGKILL


class StageFailed(RuntimeError):
    """A stage exited non-zero; `str()` is the stage's name and its own error message."""

    def __init__(
        self, stage: str, message: str, seconds: float = 0.0, stderr_tail: str = "", log_file: str = ""
    ):
        super().__init__(f"stage '{stage}' failed: {message}")
        self.stage, self.message, self.seconds, self.stderr_tail = stage, message, seconds, stderr_tail
        self.log_file = log_file  # the stage's whole output (flows/runner.py, stage_log)


FAILURE_TITLE = "ftpipe run failed"
_TOLD = "ftpipe_failure_told"  # set on an exception whose notification is sent


def tell_failure(exc: BaseException, root: Path) -> None:
    """The run-failure notification (FTPIPE_NOTIFY), once per failure: the retrain flow sends it, however
    it was started (`ftpipe run`, a schedule, a trigger), and `ftpipe run` sends it for a failure the flow
    never saw (Prefect could not start it)."""
    if getattr(exc, _TOLD, False):
        return
    said = isinstance(exc, (StageFailed, RetrainError, ParamsError))
    body = str(exc) if said else f"{type(exc).__name__}: {exc}"
    log = exc.log_file if isinstance(exc, StageFailed) and exc.log_file else root / ".dvc/tmp/ftpipe-logs"
    notify(FAILURE_TITLE, body, log)
    setattr(exc, _TOLD, True)


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
    from dvc.exceptions import DvcException  # DVC is imported when used: `ftpipe check` needs none of it
    from dvc.repo import Repo
    from dvc.stage.cache import RunCacheNotFoundError
    from dvc_data.hashfile.hash_info import HashInfo

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


LOG_DIR = Path(".dvc") / "tmp" / "ftpipe-logs"  # DVC's git-ignored scratch folder
NO_PROGRESS_ENV = "FTPIPE_NO_PROGRESS"  # `ftpipe --no-progress` sets it
# progress bars off, checked against the installed packages: tqdm reads TQDM_* as its defaults
# (transformers' Trainer and datasets draw with tqdm), huggingface_hub and datasets have their own switch,
# MLflow draws artifact uploads with its own bar
QUIET_BARS = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
WARNING_LINE = re.compile(r"^\d\d:\d\d:\d\d \S+ (WARNING|ERROR|CRITICAL) ")  # stages/core/logs.py's format
# what the quiet console shows of a stage: its warnings and errors, and finetune's line per epoch
SHOWN_WHEN_QUIET = re.compile(r"^\d\d:\d\d:\d\d \S+ ((WARNING|ERROR|CRITICAL) |INFO epoch \d+/\d+ done: )")
DVC_BUSY = ("is busy, it is being blocked by", "Unable to acquire lock")


def progress_bars() -> bool:
    """Third-party progress bars: on only when stderr is a terminal and --no-progress was not given."""
    return sys.stderr.isatty() and os.environ.get(NO_PROGRESS_ENV, "") in ("", "0")


def stage_env(progress: bool | None = None) -> dict[str, str]:
    """The environment of a stage: this interpreter's bin first (dvc.yaml says `python`), quiet bars."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TQDM_MININTERVAL", "10")  # a progress line every 10 s, not a flood in the logs
    env.setdefault("DVC_NO_ANALYTICS", "1")  # nothing leaves the machine
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    if not (progress_bars() if progress is None else progress):
        for key, value in QUIET_BARS.items():
            env.setdefault(key, value)
    return env


def stage_log(root: str | Path, spec: StageSpec) -> Path:
    """Where a stage's output is kept: .dvc/tmp/ftpipe-logs/STAGE.log (the last run of that stage)."""
    return Path(root) / LOG_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', spec.addressing)}.log"


def _pump(stream: IO[bytes], on_line: Callable[[str], None]) -> None:
    """Pass a child's output on line by line (carriage returns end a line too), with secrets masked: the
    stage's output reaches its log file, the Prefect logs and the summary artifact."""
    buf = b""
    for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
        buf += chunk
        *lines, buf = re.split(rb"[\r\n]", buf)
        for raw in lines:
            if line := mask_secrets(raw.decode("utf-8", "replace").rstrip()):
                on_line(line)
    if line := mask_secrets(buf.decode("utf-8", "replace").rstrip()):
        on_line(line)


def stage_error(stderr_lines: list[str]) -> str:
    """The stage's own error: the last exception line(s), else its last logged ERROR line's message, else
    its last stderr lines, else DVC's error."""
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
    logged_error = re.compile(r"^\d\d:\d\d:\d\d \S+ (?:ERROR|CRITICAL) (.+)$")  # stages/core/logs.py's format
    logged = [m.group(1) for m in map(logged_error.match, own) if m]
    if logged:  # a stage that caught its error logged it as one line (register does)
        return logged[-1]
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


def stage_context(lines: list[str], keep: int = 10) -> list[str]:
    """What a failed stage printed before its error: its last lines before the traceback, DVC's own
    ERROR lines left out (the error itself is said once, by the caller)."""
    own = [ln for ln in lines if ln.strip() and not ln.startswith("ERROR: ")]
    starts = [i for i, ln in enumerate(own) if ln.startswith("Traceback (most recent call last)")]
    return own[: starts[0]][-keep:] if starts else own[:-5][-keep:]


def _alive_other(pid: int) -> bool:
    return pid != os.getpid() and psutil.pid_exists(pid)


def dvc_holders(root: str | Path) -> list[str]:
    """Other DVC processes working in ROOT now, as "pid N (`cmd`) writing PATH": from DVC's own lock
    files (.dvc/tmp/rwlock names each reader and writer; .dvc/tmp/lock holds the holder's pid)."""
    root = Path(root)
    holders: dict[int, str] = {}
    try:
        rw = json.loads((root / ".dvc" / "tmp" / "rwlock").read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        rw = {}
    for mode in ("write", "read"):  # a writer named by what it writes
        for path, infos in (rw.get(mode) or {}).items():
            for info in infos if isinstance(infos, list) else [infos]:
                pid = int(info.get("pid", 0))
                if pid and _alive_other(pid) and pid not in holders:
                    rel = os.path.relpath(path, root) if os.path.isabs(path) else path
                    what = "writing" if mode == "write" else "reading"
                    holders[pid] = f"pid {pid} (`{info.get('cmd', 'dvc')}`) {what} {rel}"
    lock = root / ".dvc" / "tmp" / "lock"
    if lock.is_file():
        with open(lock, "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: nobody holds it
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            except BlockingIOError:
                fh.seek(0)
                pid = int(m.group()) if (m := re.search(r"\d+", fh.read())) else 0
                if pid not in holders and (not pid or _alive_other(pid)):
                    holders[pid] = f"pid {pid or '?'} (holds DVC's repository lock, {lock.relative_to(root)})"
    return list(holders.values())


def busy_message(root: str | Path, holders: list[str]) -> str:
    """What to tell the user when another DVC process holds the workspace."""
    who = "; ".join(holders) if holders else "another DVC process (it has finished since)"
    pids = [h.split()[1] for h in holders if h.split()[1].isdigit()]
    stop = f" (`kill {' '.join(pids)}`)" if pids else ""
    return (
        f"another DVC process is working in {root}: {who}. Wait for it to finish or stop it{stop}, then "
        "run again; do not delete DVC's lock files while it runs."
    )


def stale_stages(root: str | Path, dag: list[StageSpec]) -> set[str]:
    """The stages of DAG that `dvc status` says are stale (always_changed ones included): one DVC call
    for the whole run, so that an up-to-date stage is skipped without starting `dvc repro` for it."""
    from dvc.repo import Repo

    root = Path(root)
    targets = [f"{root / (f or 'dvc.yaml')}:{n}" for f, _, n in (s.addressing.rpartition(":") for s in dag)]
    with Repo(str(root)) as repo:
        status = repo.status(targets=targets)
    names = {key.rpartition(":")[2] for key in status}
    return {s.name for s in dag if s.name in names}


def run_stage(
    spec: StageSpec,
    root: str | Path,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> StageOutcome:
    """Run one stage through `dvc repro --single-item`; raise StageFailed with its own message.

    Its output goes to `stage_log(root, spec)`, to `log` line by line, and the lines the quiet console
    shows (its WARNING/ERROR log lines and finetune's line per epoch: SHOWN_WHEN_QUIET) to `warn` as well,
    when they are given.
    """
    from dvc.lock import LockError

    root = Path(root)
    try:
        status = planned_status(root, spec, force)
    except LockError:  # DVC's lock files: another DVC process is at work here
        raise StageFailed(spec.name, busy_message(root, dvc_holders(root))) from None
    cmd = [sys.executable, "-m", "dvc", "repro", "--single-item", spec.addressing]
    if force:
        cmd.append("--force")
    path = stage_log(root, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    err: list[str] = []
    start = time.monotonic()
    with open(path, "w", encoding="utf-8") as logfile:
        guard = threading.Lock()

        def on_line(stream: list[str] | None) -> Callable[[str], None]:
            def take(line: str) -> None:
                with guard:
                    logfile.write(line + "\n")
                    logfile.flush()
                if stream is not None:
                    stream.append(line)
                if log is not None:
                    log(line)
                if warn is not None and SHOWN_WHEN_QUIET.match(line):
                    warn(line)

            return take

        rc = _run_child(cmd, root, on_line(None), on_line(err))
    seconds = time.monotonic() - start
    if rc != 0:
        if any(marker in line for line in err for marker in DVC_BUSY):
            message = busy_message(root, dvc_holders(root))
        else:
            message = stage_error(err)
        raise StageFailed(spec.name, message, seconds, "\n".join(stage_context(err)), str(path))
    changed_nothing = status == "ran" and spec.always_changed and report_says_unchanged(root, spec)
    return StageOutcome(spec.name, status, seconds, changed_nothing)


def _run_child(
    cmd: list[str], root: Path, on_out: Callable[[str], None], on_err: Callable[[str], None]
) -> int:
    """Run CMD in its own process group, its output passed on line by line; its exit status."""
    proc = subprocess.Popen(
        cmd,
        cwd=root,
        env=stage_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: stopping the flow stops the whole stage
    )
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, on_out), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, on_err), daemon=True),
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
    return rc
