"""Atomic writes: outputs get the umask's modes, and a killed run's temporaries are removed next time."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from stages.core.io import atomic_dir, atomic_file, write_json

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_follow_the_umask(tmp_path: Path, umask_022) -> None:
    write_json(tmp_path / "reports" / "a.json", {"x": 1})
    with atomic_dir(tmp_path / "data" / "raw") as tmp:
        (tmp / "rows.txt").write_text("x")
    assert mode(tmp_path / "reports" / "a.json") == 0o644  # mkstemp alone gives 0600
    assert mode(tmp_path / "data" / "raw") == 0o755  # mkdtemp alone gives 0700
    os.umask(0o077)
    write_json(tmp_path / "reports" / "b.json", {})
    assert mode(tmp_path / "reports" / "b.json") == 0o600


def test_a_killed_runs_leftovers_are_removed_by_the_next_write_and_ignored_by_git(tmp_path: Path) -> None:
    data, reports = tmp_path / "data", tmp_path / "reports"
    (data / ".raw.tmp-k1l2").mkdir(parents=True)  # what kill -9 during ingest's write leaves
    (data / ".raw.tmp-k1l2" / "rows.parquet").write_text("half")
    (data / ".raw.old-4242").mkdir()
    reports.mkdir()
    (reports / ".ingest.json.tmp-a1b2").write_text("{")
    (reports / ".other.json.tmp-zz").write_text("{")  # another output's: left for its own writer
    with atomic_dir(data / "raw") as tmp:
        (tmp / "rows.parquet").write_text("whole")
    write_json(reports / "ingest.json", {})
    assert sorted(p.name for p in data.iterdir()) == ["raw"]
    assert sorted(p.name for p in reports.iterdir()) == [".other.json.tmp-zz", "ingest.json"]
    with pytest.raises(RuntimeError), atomic_file(reports / "x.json") as fh:
        fh.write("partial")
        raise RuntimeError("killed")
    assert not list(reports.glob(".x.json.tmp-*"))

    ignored = subprocess.run(
        ["git", "check-ignore", "data/.raw.tmp-k1l2", "data/.raw.old-4242", "reports/.ingest.json.tmp-a1b2"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert ignored.returncode == 0 and len(ignored.stdout.split()) == 3
