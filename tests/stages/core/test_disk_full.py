"""Issue 22: a full disk is one message naming the output, the free space and what was needed; nothing
is half-written and the previous output stays.

Two ways to fill a disk without filling this machine's: ENOSPC injected at the atomic writer's file
boundary (the file object `stages.core.io` opens; always runs), and a real 8 KiB tmpfs mounted in a user
and mount namespace (`unshare -Urm`; skipped where the kernel does not allow it) under the clean stage.
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from stages.core import io
from stages.core.io import DiskFull, atomic_dir, disk_full_message, write_json, write_table
from tests.conftest import REPO


class FullFile:
    """A real file whose writes fail as a full disk does (after the first `room` bytes)."""

    def __init__(self, fh: Any, room: int = 0) -> None:
        self._fh, self._room = fh, room

    def write(self, data: Any) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._fh.write(data)

    def __enter__(self) -> FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file the atomic writers open fails its writes with ENOSPC."""
    monkeypatch.setattr(io, "open", lambda *a, **kw: FullFile(open(*a, **kw), room=10), raising=False)


def test_a_json_report_on_a_full_disk_names_path_free_space_and_bytes_needed(
    tmp_path: Path, full_disk: None
) -> None:
    target = tmp_path / "reports" / "clean.json"
    target.parent.mkdir()
    target.write_text('{"old": true}\n')
    data = {"rows": list(range(100))}
    with pytest.raises(DiskFull) as info:
        write_json(target, data)
    msg = str(info.value)
    needed = len(json.dumps(data, indent=2, sort_keys=True).encode()) + 1
    assert msg.startswith(f"no space left on device writing {target}: ")
    free = shutil.disk_usage(tmp_path).free
    assert " free of " in msg and f"about {needed} B needed" in msg and "\n" not in msg
    assert f"{free / 2**30:.1f} GiB free" in msg or f"{free / 2**20:.1f} MiB free" in msg
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert target.read_text() == '{"old": true}\n'  # the previous report stays
    assert sorted(p.name for p in target.parent.iterdir()) == ["clean.json"]  # no temporary left


def test_a_table_in_an_atomic_folder_names_the_final_path_and_keeps_the_old_folder(
    tmp_path: Path, full_disk: None
) -> None:
    out = tmp_path / "interim"
    out.mkdir()
    (out / "clean.parquet").write_text("the previous run's")
    with pytest.raises(DiskFull, match=rf"writing {out / 'clean.parquet'}: .* free of"):
        with atomic_dir(out) as tmp:
            write_table(tmp / "clean.parquet", pd.DataFrame({"text": ["x" * 1000] * 50}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["interim"]  # no .interim.tmp-* left
    assert (out / "clean.parquet").read_text() == "the previous run's"


def test_a_quota_and_an_unknown_size_are_said_as_such(tmp_path: Path) -> None:
    msg = disk_full_message(
        tmp_path / "no" / "such" / "file.bin", OSError(errno.EDQUOT, "Disk quota exceeded")
    )
    assert msg.startswith(f"disk quota exceeded writing {tmp_path}/no/such/file.bin: ")
    assert f"on the filesystem of {tmp_path}" in msg and "needed" not in msg  # the nearest existing folder


def test_other_write_errors_pass_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*a: Any, **kw: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(io, "open", denied, raising=False)
    with pytest.raises(PermissionError) as info:
        write_json(tmp_path / "a.json", {})
    assert not isinstance(info.value, DiskFull) and not list(tmp_path.iterdir())


def test_a_stage_shows_a_full_disk_as_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook setup_logging installs: one ERROR line without FTPIPE_VERBOSE, the traceback with it."""
    from stages.core import logs

    monkeypatch.delenv("FTPIPE_VERBOSE", raising=False)
    ftpipe = logging.getLogger("ftpipe")
    # only this handler: earlier tests' handlers (the root's, from basicConfig) write to closed captures
    monkeypatch.setattr(ftpipe, "handlers", [logging.StreamHandler(sys.stderr)])
    monkeypatch.setattr(ftpipe, "propagate", False)
    exc = DiskFull("data/interim/clean.parquet", OSError(errno.ENOSPC, "No space left on device"))
    logs._excepthook(DiskFull, exc, None)
    err = capsys.readouterr().err
    assert err.startswith("DiskFull: no space left on device writing data/interim/clean.parquet: ")
    assert err.count("\n") == 1 and "Traceback" not in err


UNSHARE = shutil.which("unshare")


def _namespaces_allowed() -> bool:
    if UNSHARE is None:
        return False
    probe = subprocess.run([UNSHARE, "-Urm", "true"], capture_output=True)
    return probe.returncode == 0


SCRIPT = """
set -e
mount -t tmpfs -o size=8k tmpfs "$FULL"
mkdir "$FULL/interim"
head -c 5000 /dev/zero > "$FULL/interim/previous.bin"   # two of the two pages: the disk is full
set +e
"$PYTHON" -m stages.clean --params "$PARAMS" --raw "$RAW" --out "$FULL/interim" --report "$REPORT"
echo "rc=$?"
ls -A "$FULL" "$FULL/interim"
"""


@pytest.mark.skipif(not _namespaces_allowed(), reason="no user/mount namespaces here (unshare -Urm)")
@pytest.mark.parametrize("verbose", ["", "1"])
def test_the_clean_stage_on_a_real_full_filesystem(tmp_path: Path, verbose: str) -> None:
    from tests.stages.test_clean_duplicates import rows_with_copies

    write_table(tmp_path / "raw" / "rows.parquet", rows_with_copies())
    (tmp_path / "full").mkdir()
    env = {
        "FULL": str(tmp_path / "full"),
        "PYTHON": sys.executable,
        "PARAMS": str(REPO / "params.yaml"),
        "RAW": str(tmp_path / "raw"),
        "REPORT": str(tmp_path / "clean.json"),
        "PATH": "/usr/bin:/bin",
        "FTPIPE_VERBOSE": verbose,
    }
    proc = subprocess.run(
        [UNSHARE, "-Urm", "sh", "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert "rc=1" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    # the previous output and nothing else: no temporary folder, no half-written table
    assert proc.stdout.split("rc=1")[1].split() == [
        f"{tmp_path}/full:",
        "interim",
        f"{tmp_path}/full/interim:",
        "previous.bin",
    ]
    err = proc.stderr.strip().splitlines()
    target = tmp_path / "full" / "interim" / "clean.parquet"
    if verbose:
        assert "Traceback (most recent call last)" in proc.stderr
        assert err[-1].startswith(f"stages.core.io.DiskFull: no space left on device writing {target}: ")
    else:
        assert "Traceback" not in proc.stderr
        assert " clean ERROR DiskFull: no space left on device writing " in err[-1]
        assert f"writing {target}: 0 B free of 8.0 KiB on the filesystem of {tmp_path}/full" in err[-1]
    assert not (tmp_path / "clean.json").exists()  # the report comes after the data: not written
