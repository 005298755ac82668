"""A `dvc repro` by hand while `ftpipe run` runs (issue 22): the run names it instead of failing at a stage
with DVC's advice to delete its lock file (the real cause, "reports/label.json is busy", was dropped).

A real `dvc repro` holds the tiny repo's `prepare` stage (its command waits) while the flow starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.commands.cli import build_parser
from flows.dag import read_dag
from flows.runner import StageFailed, run_stage
from tests.flows.conftest import DVC_ENV

SLOW = (
    "python -c \"import pathlib, time; pathlib.Path('started').touch(); time.sleep(120)\" "
    "&& python step.py prepare"
)


def cli(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def dvc_by_hand(tiny_repo: Path) -> Iterator[subprocess.Popen]:
    """`dvc repro prepare` running in the tiny repo, inside its stage's command."""
    dvc_yaml = tiny_repo / "dvc.yaml"
    dvc_yaml.write_text(dvc_yaml.read_text().replace("cmd: python step.py prepare", f"cmd: {SLOW}"))
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", **DVC_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", "prepare"],
        cwd=tiny_repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not (tiny_repo / "started").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_stage_blocked_by_dvc_repro_names_it(tiny_repo: Path, dvc_by_hand: subprocess.Popen) -> None:
    prepare = read_dag(tiny_repo)[0]
    with pytest.raises(StageFailed) as exc:
        run_stage(prepare, tiny_repo)
    message = exc.value.message
    assert f"pid {dvc_by_hand.pid} (`" in message and "repro prepare`) writing prepared.txt" in message
    assert "another DVC process is working in" in message and f"`kill {dvc_by_hand.pid}`" in message
    assert "manually remove" not in message


def test_ftpipe_run_stops_before_anything_naming_the_dvc_process(
    prefect_harness, tiny_repo: Path, dvc_by_hand: subprocess.Popen, capsys
) -> None:
    params = tiny_repo / "params.yaml"
    before, written = params.read_bytes(), params.stat().st_mtime_ns
    assert cli("run", "--root", str(tiny_repo), "-S", "train.factor=2") == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("ftpipe run: another DVC process is working in"), err
    assert f"pid {dvc_by_hand.pid}" in err and "Nothing ran." in err
    assert params.read_bytes() == before and not (tiny_repo / "dvc.lock").exists()
    assert params.stat().st_mtime_ns == written  # not even a trial of the -S values under DVC's feet
