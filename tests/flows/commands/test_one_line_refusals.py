"""Refusals that used to be tracebacks are one line with the fix and exit 2 (issue #34, items 3 and 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FTPIPE = [sys.executable, "-m", "flows.commands.cli"]


def ftpipe(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FTPIPE, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("budget", ["1e309", "inf", "nan", "-1", "0", "-inf"])
def test_a_budget_that_is_no_positive_finite_number_is_one_line_exit_2_without_torch(budget: str) -> None:
    """`--budget-gb inf` was an OverflowError traceback, `-1` took 19 s to refuse: torch was imported first."""
    code = (
        "import sys\nfrom flows.commands import cli\n"
        f"try:\n    cli.main(['plan', '--budget-gb={budget}'])\n"
        "except SystemExit as exc:\n    print(exc.code, 'torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "False"], (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("ftpipe plan: --budget-gb") and "e.g. 8" in proc.stderr


@pytest.mark.parametrize("budget", ["inf", "nan", "1e309", "lots"])
def test_the_budget_variable_is_checked_the_same_way(budget: str) -> None:
    proc = ftpipe("plan", env={"FTPIPE_MEMORY_BUDGET_GB": budget})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "FTPIPE_MEMORY_BUDGET_GB" in proc.stderr


def test_the_memory_plan_refuses_an_infinite_budget_variable_itself() -> None:
    from stages.model.memplan import MemoryPlanError, memory_budget

    for raw in ("inf", "nan", "1e309"):
        with pytest.raises(MemoryPlanError, match="FTPIPE_MEMORY_BUDGET_GB"):
            memory_budget("cpu", {"FTPIPE_MEMORY_BUDGET_GB": raw})


def test_a_closed_pipe_ends_quietly() -> None:
    """`ftpipe history | head -2` printed a BrokenPipeError traceback; here the reader is gone before the
    command writes its line (`true` exits at once, the command needs a second to start)."""
    proc = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m flows.commands.cli check | true; echo rc=${{PIPESTATUS[0]}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "BrokenPipeError" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.strip() == "rc=0"
