"""One run at a time per workspace: the lock every `ftpipe run` and scheduled run holds from start to end.

Two runs in one workspace corrupt provenance: `ftpipe run -S finetune.epochs=3` started while another run
trained with 250 epochs rewrote params.yaml mid-run, and dvc.lock then recorded 3 epochs against a model
trained for 250. DVC's own lock covers one `dvc repro` at a time; this one covers the whole flow (the
`-S` trial and write included), so a second run stops before touching anything, naming the holder.

The lock is `flock` on `.dvc/tmp/ftpipe-run.lock` (DVC's git-ignored scratch folder): the system drops
it when its process dies, so a killed run never leaves a stale lock. The file says who holds it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from flows.dag import RetrainError

LOCK_FILE = Path(".dvc") / "tmp" / "ftpipe-run.lock"

_held: dict[Path, tuple[int, int]] = {}  # lock path -> (thread id, depth): nested takes by one thread
_guard = threading.Lock()


class WorkspaceBusy(RetrainError):
    """Another run holds this workspace; the message names it (pid, host, start time, command)."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "a run that is just starting"
    return (
        f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}, "
        f"command `{info.get('command')}`"
    )


@contextlib.contextmanager
def workspace_lock(root: str | Path, command: str | None = None) -> Iterator[None]:
    """Hold ROOT's run lock for the block; raise WorkspaceBusy at once when another run holds it."""
    path = (Path(root) / LOCK_FILE).resolve()
    me = threading.get_ident()
    with _guard:
        owner, depth = _held.get(path, (None, 0))
        if owner == me:  # `ftpipe run` holds it and then runs the flow, which takes it too
            _held[path] = (me, depth + 1)
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _guard:
                _held[path] = (me, _held[path][1] - 1)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WorkspaceBusy(
            f"{Path(root)} is in use by another run ({_holder(path)}). One run at a time per workspace: "
            "wait for it to finish, or stop it (`kill PID`); this run changed nothing, params.yaml "
            "included."
        ) from None
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(info).encode())
    with _guard:
        _held[path] = (me, 1)
    try:
        yield
    finally:
        with _guard:
            del _held[path]
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
