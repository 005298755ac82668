"""One writer per output: the lock a `ftpipe predict` holds on its output (and its parts folder) for the run.

    with output_lock(Path("out.csv")):   # `.out.csv.lock` beside it; OutputBusy at once if another run has it
        ...                               # write `.out.csv.parts/`, then join into out.csv

Two runs writing one output used to mix two model versions in one file: the second emptied the parts
folder and wrote its own part 0, the first joined it under its own name and reported success. The lock
is `flock` on `.<output name>.lock` beside the output, so the system drops it when its process dies (a
`kill -9` leaves no stale lock, only an unlocked file the next run takes). The file holds the holder's
pid, for the refusal. Taking it is also the first write in the output's folder, so a folder predict
cannot write in is said in one line before the model loads.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from flows.commands.predict.inputs import InputError, PredictError


class OutputBusy(PredictError):
    """Another `ftpipe predict` is writing this output (exit 1: the command is right, the moment is not)."""


def lock_path(output: Path) -> Path:
    """`.<output name>.lock` beside the output, as the parts folder is `.<output name>.parts`."""
    return output.with_name(f".{output.name}.lock")


def unwritable(output: Path, exc: OSError) -> str:
    """One line for an output folder predict cannot create files in (read-only, no permission, ...)."""
    return (
        f"cannot write in {output.parent} (for {output.name}): {exc.strerror or exc}. Write the output to "
        "another folder, or make this one writable."
    )


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "a run that is just starting"


def _take(path: Path, output: Path) -> int:
    """An fd holding the lock on the file now at `path` (one a finishing run unlinked is taken again)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise InputError(unwritable(output, exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _holder(fd)
            os.close(fd)
            raise OutputBusy(
                f"{output} is being written by another `ftpipe predict` ({who}, holding {path.name}): "
                "one writer per output, or the two runs' rows would mix. Wait for it to finish (or stop "
                "it), or write to another path; nothing was changed."
            ) from None
        try:
            mine, now = os.fstat(fd), os.stat(path)
            if (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder finished and removed the file between our open and flock: again


@contextlib.contextmanager
def output_lock(output: str | Path) -> Iterator[Path]:
    """Hold `output`'s lock for the block; OutputBusy at once when another run holds it, InputError when
    its folder takes no new file. The lock file goes at the end (removed while still held)."""
    output = Path(output)
    path = lock_path(output)
    fd = _take(path, output)
    try:
        with contextlib.suppress(OSError):  # the pid is for the refusal's message only
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
