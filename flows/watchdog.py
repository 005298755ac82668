"""The watchdog of one `ftpipe run`: when the run dies without cleaning up (kill -9, an OOM kill), it
stops what the run started and puts params.yaml back.

    python -m flows.watchdog PID ROOT     # started by `ftpipe run` (start_watchdog); not by hand

SIGKILL runs no handler in the run itself, so the run starts this small process first and keeps a pipe
to it. While the run lives, the watchdog notes the run's descendants (the temporary Prefect server,
`dvc repro` and the stage command it runs) every POLL_S seconds. When the pipe closes without the run
saying "done", the run has died: the watchdog kills every process it noted that still lives (each with
its process group: `dvc repro` runs in its own), before DVC can finish the stage and write the `-S`
value into dvc.lock, then puts back the params files the run had overridden (flows/params.py).
A run that ends normally writes "done" and the watchdog exits without touching anything.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import psutil

from flows.params import restore_killed_run

POLL_S = 0.25
DONE = b"done\n"


def _descendants(pid: int, known: dict[int, psutil.Process]) -> None:
    """Add the live descendants of `pid` to `known` (a Process remembers its start time: a reused pid is
    never mistaken for one of ours)."""
    try:
        for child in psutil.Process(pid).children(recursive=True):
            if child.pid != os.getpid():  # the watchdog is the run's child too
                known.setdefault(child.pid, child)
    except psutil.Error:
        pass


def stop_all(known: dict[int, psutil.Process]) -> int:
    """SIGKILL every noted process that still runs, its process group and its own descendants; how many."""
    live: dict[int, psutil.Process] = {}
    for proc in known.values():
        try:
            if proc.is_running():
                live[proc.pid] = proc
                for child in proc.children(recursive=True):
                    if child.pid != os.getpid():
                        live.setdefault(child.pid, child)
        except psutil.Error:
            continue
    for proc in live.values():
        try:
            if proc.is_running():
                if os.getpgid(proc.pid) == proc.pid:  # a group leader we started (dvc): its whole group
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.kill()
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    psutil.wait_procs(list(live.values()), timeout=10)
    return len(live)


def watch(pid: int, root: Path, pipe: IO[bytes]) -> int:
    """Note `pid`'s descendants until `pipe` says done (exit 0) or closes (the run died: clean up)."""
    known: dict[int, psutil.Process] = {}
    fd = pipe.fileno()
    while True:
        _descendants(pid, known)
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if not ready:
            continue
        data = os.read(fd, 64)
        if data.startswith(DONE):
            return 0
        if not data:  # EOF: the run is gone without a word
            break
    stopped = stop_all(known)
    put_back = restore_killed_run(root)
    print(
        f"ftpipe run (pid {pid}) was killed: stopped {stopped} process(es) it had started"
        + (f" and put back {', '.join(put_back)}" if put_back else "")
        + ".",
        file=sys.stderr,
    )
    return 0


class Watchdog:
    """The run's handle on its watchdog: `done()` on a normal end; a killed run's pipe closes by itself."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        self.proc = proc

    def done(self) -> None:
        """The run ends normally: the watchdog exits without touching anything."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.write(DONE)
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def start_watchdog(root: Path) -> Watchdog:
    """Start the watchdog of this process's run in ROOT (its own session: Ctrl-C in the terminal is the
    run's to handle, not the watchdog's)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.watchdog", str(os.getpid()), str(root)],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    return Watchdog(proc)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return watch(int(args[0]), Path(args[1]), sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main())
