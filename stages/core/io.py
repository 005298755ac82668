"""Atomic outputs and small table helpers.

Every stage writes through these so an interrupted run never leaves a half-written output that a later
run could mistake for a good one: content goes to a temporary sibling (`.NAME.tmp-*`), then is renamed
into place. The output gets the modes the umask gives any new file (the temporary is created private),
and the siblings a killed run left behind for the same target are removed before the next write
(`.gitignore` ignores them meanwhile).

A full disk (ENOSPC) or an exceeded quota (EDQUOT) while writing is raised as `DiskFull`: one message
naming the output, the space left on its filesystem and, when known, the bytes the write needed
(`disk_full_message`); the temporary is removed first, so nothing is half-written and the previous
output stays. A stage shows it as one line (stages/core/logs.py), the traceback only with FTPIPE_VERBOSE=1.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas takes 0.3 s to import: only the table helpers need it (`ftpipe check` does not)
    import pandas as pd


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _size(n: int) -> str:
    """Bytes in the largest unit that keeps a number of at least 1 (`1.5 GiB`)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def disk_full_message(path: str | Path, exc: OSError, needed: int | None = None) -> str:
    """One line for a write that ran out of space: the path, the free space there (`shutil.disk_usage`
    of the nearest folder that exists), and the bytes the write needed when the caller knows them."""
    path = Path(path)
    what = "disk quota exceeded" if exc.errno == errno.EDQUOT else "no space left on device"
    where = next((p for p in (path, *path.parents) if p.is_dir()), Path("."))
    try:
        usage = shutil.disk_usage(where)
        free = f"{_size(usage.free)} free of {_size(usage.total)} on the filesystem of {where}"
    except OSError:
        free = f"free space unknown ({where} cannot be read)"
    need = f", about {_size(needed)} needed" if needed is not None else ""
    return (
        f"{what} writing {path}: {free}{need}. Nothing was half-written: the previous output, if any, is "
        "unchanged. Free some space (or quota), or write the outputs elsewhere, and run again."
    )


class DiskFull(OSError):
    """A write ran out of space (ENOSPC) or quota (EDQUOT); `str()` is `disk_full_message`'s line."""

    def __init__(self, path: str | Path, exc: OSError, needed: int | None = None) -> None:
        code = exc.errno or errno.ENOSPC
        super().__init__(code, exc.strerror or os.strerror(code))
        self.filename = str(path)
        self.path, self.needed = Path(path), needed
        self.message = disk_full_message(path, exc, needed)

    def __str__(self) -> str:
        return self.message


def as_disk_full(
    exc: BaseException, path: str | Path | None = None, needed: int | None = None
) -> DiskFull | None:
    """`exc` as a DiskFull when it, or an exception it was raised from, is ENOSPC/EDQUOT; else None.

    `path` names the output (default: the failing file's own name, when the error carries one)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DiskFull) and path is None:
            return cur
        if isinstance(cur, OSError) and cur.errno in DISK_FULL_ERRNOS:
            return DiskFull(path or cur.filename or "an output", cur, needed)
        cur = cur.__cause__ or cur.__context__
    return None


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: put it straight back
    os.umask(mask)
    return mask


def remove_leftovers(target: str | Path) -> list[Path]:
    """Remove `target`'s temporary siblings (`.NAME.tmp-*`, `.NAME.old-*`) left by a killed run."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    gone = []
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.old-*"):
        for path in target.parent.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            gone.append(path)
    return gone


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces `target` only if the block finishes without error."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:  # no room for a folder entry (or no inodes left)
        full = as_disk_full(exc, target)
        if full is None:
            raise
        raise full from exc
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700 whatever the umask
    try:
        yield tmp
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # first, so the free space reported is what is left
        full = as_disk_full(exc)
        if full is None:
            raise
        # name the output as it will be (data/interim/clean.parquet), not its temporary folder
        inside = full.path.relative_to(tmp) if full.path.is_relative_to(tmp) else None
        raise DiskFull(target / inside if inside else target, full, full.needed) from exc
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: str | Path, mode: str = "w", needed: int | None = None) -> Iterator[IO[Any]]:
    """Open a temporary sibling of `target` for writing; rename it over `target` on success.

    `needed`: the bytes to be written, when the caller knows them (named if the disk is full)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
        tmp = Path(tmp_name)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600 whatever the umask
        os.close(fd)
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)  # first, so the free space reported is what is left
        full = as_disk_full(exc, target, needed)
        if full is None:
            raise
        raise full from exc


def write_json(path: str | Path, data: object) -> None:
    """Write `data` as indented, key-sorted JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    with atomic_file(path, needed=len(text.encode())) as fh:
        fh.write(text)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_table(path: str | Path, df: pd.DataFrame) -> None:
    """Write a DataFrame as Parquet, atomically."""
    with atomic_file(path, "wb") as fh:
        df.to_parquet(fh, index=False)


def read_table(path: str | Path) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(path)


def write_jsonl(path: str | Path, records: Sequence[Mapping[str, object]]) -> None:
    """Write records one JSON object a line (rejects and quarantines a person can read), atomically."""
    text = "".join(json.dumps(rec, ensure_ascii=False, default=str, sort_keys=True) + "\n" for rec in records)
    with atomic_file(path, needed=len(text.encode())) as fh:
        fh.write(text)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
