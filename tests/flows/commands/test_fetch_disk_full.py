"""`ftpipe fetch` on a full disk: the one line of stages/core/io.py (the folder, the free space, the bytes
the copy needs), exit 2, and no half-written folder.

Before: MLflow's downloader gathers every file's error into one MlflowException ("The following failures
occurred while downloading one or more artifacts ... [Errno 28] No space left on device"), printed as
several lines with no free space and no size. Two ways to fill a disk, as tests/stages/core/test_disk_full.py
does: ENOSPC raised at the file copy MLflow's local artifact store makes (always runs; the copy writes half
the file first), and a real 16 KiB tmpfs in a user and mount namespace (`unshare -Urm`; skipped where the
kernel does not allow it) with the real command in a subprocess.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stages.registry import tags as registry_tags
from tests.conftest import REPO
from tests.factories import TINY_FILES, register_version
from tests.flows.commands.test_registry_versions import make_model, run, store  # noqa: F401 (a fixture)

WEIGHTS = TINY_FILES["weights.txt"]  # make_model's versions hold config.json and weights.txt


def _disk_full_line(err: str, dest: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ftpipe fetch: no space left on device writing {dest}: "), err
    assert " free of " in lines[0] and " needed" in lines[0] and "Traceback" not in err, err


def test_a_full_disk_is_one_line_and_leaves_no_folder(
    store: dict[str, Any],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlflow.store.artifact import local_artifact_repo

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    make_model(store, "full-disk", 1, champion="1", challenger=None)
    real = shutil.copy2

    def half_then_full(src: str, dst: str, *a: Any, **kw: Any) -> Any:
        if os.path.basename(src) != "weights.txt":
            return real(src, dst, *a, **kw)
        target = os.path.join(dst, "weights.txt") if os.path.isdir(dst) else dst
        Path(target).write_text(WEIGHTS[:5])
        raise OSError(errno.ENOSPC, "No space left on device", target)

    monkeypatch.setattr(local_artifact_repo.shutil, "copy2", half_then_full)
    dest = tmp_path / "served" / "champion"
    capsys.readouterr()
    assert run("fetch", "champion", str(dest), "--name", "full-disk", "--params", "absent.yaml") == 2
    _disk_full_line(capsys.readouterr().err, dest)
    assert sorted(p.name for p in dest.parent.iterdir()) == []  # no copy, no .champion.tmp-*


def _namespaces_allowed() -> bool:
    unshare = shutil.which("unshare")
    return (
        unshare is not None and subprocess.run([unshare, "-Urm", "true"], capture_output=True).returncode == 0
    )


SCRIPT = """
set -e
mount -t tmpfs -o size=16k tmpfs "$FULL"
head -c 12000 /dev/zero > "$FULL/previous.bin"   # three of the four pages: the copy does not fit
set +e
"$PYTHON" -m flows.commands.cli fetch 1 "$FULL/copy" --name "$NAME" --params absent.yaml
echo "rc=$?"
ls -A "$FULL"
"""


@pytest.mark.skipif(not _namespaces_allowed(), reason="no user/mount namespaces here (unshare -Urm)")
def test_fetch_on_a_real_full_filesystem(store: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    make_model(store, "real-full", 1, champion="1", challenger=None)
    # a weights file larger than the room left, logged as version 2
    complete = {registry_tags.STATUS: registry_tags.COMPLETE}
    register_version(
        store["uri"], "real-full", files={"weights.txt": "0.5 " * 4000}, tags=complete, aliases=()
    )
    (tmp_path / "full").mkdir()
    env = {
        "FULL": str(tmp_path / "full"),
        "PYTHON": sys.executable,
        "NAME": "real-full",
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "MLFLOW_TRACKING_URI": store["uri"],
        "HOME": str(tmp_path),
    }
    script = SCRIPT.replace("fetch 1 ", "fetch 2 ")
    proc = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "rc=2" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.split("rc=2")[1].split() == ["previous.bin"]  # no copy, no temporary folder
    _disk_full_line(proc.stderr, tmp_path / "full" / "copy")
