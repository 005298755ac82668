"""`ftpipe run` is quiet by default and verbose on request (-v, FTPIPE_VERBOSE=1).

Default output: one line per stage, the summary, warnings that mean something, and a failure's message
once. It used to print every stage's output and Prefect's INFO lines, and a clean stage failure four
times inside Prefect tracebacks. Real `ftpipe run` processes, against the session's Prefect server.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from flows.runner import LOG_DIR, QUIET_BARS, stage_env
from stages.core.logs import setup_logging

REPO = Path(__file__).resolve().parents[3]
FAIL_MESSAGE = "prepare: data.txt line 3 says FAIL; remove that line and run again"


def ftpipe(repo: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m flows.commands.cli ARGV --root REPO` as a user runs it (stdout and stderr together)."""
    from prefect.settings import PREFECT_API_URL

    full = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FTPIPE_"))}
    full["PREFECT_API_URL"] = str(PREFECT_API_URL.value())  # the session's server: no server start each
    full.update(env or {})
    cmd = [sys.executable, "-m", "flows.commands.cli", *argv[:1], "--root", str(repo), *argv[1:]]
    return subprocess.run(
        cmd, cwd=REPO, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300
    )


def test_a_stage_failure_is_said_once_without_a_traceback(prefect_harness, tiny_repo: Path) -> None:
    (tiny_repo / "data.txt").write_text("alpha\nbeta\nFAIL\n")
    proc = ftpipe(tiny_repo, "run")
    out = proc.stdout
    assert proc.returncode == 1, out
    assert out.count(FAIL_MESSAGE) == 1, out
    assert "Traceback" not in out and "Task run" not in out, out
    assert out.strip().splitlines()[-1] == f"ftpipe run: stage 'prepare' failed: ValueError: {FAIL_MESSAGE}"
    log = tiny_repo / LOG_DIR / "prepare.log"
    assert f"output: {log}" in out and "prepare: reading data.txt" in out  # what it said before its error
    assert "Traceback (most recent call last)" in log.read_text()  # the whole output is kept

    verbose = ftpipe(tiny_repo, "run", "-v").stdout  # -v: the stage's traceback, as it came
    assert "Traceback (most recent call last)" in verbose and "Task run 'prepare'" in verbose


def test_default_output_is_a_line_per_stage_and_the_summary(prefect_harness, tiny_repo: Path) -> None:
    proc = ftpipe(tiny_repo, "run")
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    head = lines[: lines.index("## ftpipe retrain")]
    assert [ln.split()[:2] for ln in head if ln.strip()] == [
        ["prepare", "ran"],
        ["train", "ran"],
        ["report", "ran"],
        ["register", "ran"],
    ], proc.stdout
    assert "reading data.txt" not in proc.stdout and "INFO" not in proc.stdout  # stage output, Prefect INFO
    assert "prepare: reading data.txt" in (tiny_repo / LOG_DIR / "prepare.log").read_text()

    verbose = ftpipe(tiny_repo, "run", env={"FTPIPE_VERBOSE": "1"}).stdout  # the env var is -v too
    assert "register: reading reports/metrics.json" in verbose and "INFO" in verbose


def test_a_stages_warnings_are_shown_without_v(prefect_harness, tiny_repo: Path) -> None:
    step = tiny_repo / "step.py"
    step.write_text(
        step.read_text().replace(
            'print(f"{name}: reading {src}", file=sys.stderr)',
            'print(f"{name}: reading {src}", file=sys.stderr)\n'
            'print(f"12:00:00 {name} WARNING {name}: 3 rows look odd", file=sys.stderr)',
        )
    )
    out = ftpipe(tiny_repo, "run", "--target", "prepare").stdout
    assert "prepare WARNING prepare: 3 rows look odd" in out and "reading data.txt" not in out


def test_progress_bars_are_off_for_stages_when_asked() -> None:
    """The switches are the installed packages' own: tqdm (transformers, datasets), MLflow."""
    env = stage_env(progress=False)
    assert all(env[k] == v for k, v in QUIET_BARS.items())
    child = (
        "from tqdm import tqdm\nfor _ in tqdm(range(3)): pass\n"
        "import mlflow.environment_variables as e\nprint(e.MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get())"
    )
    proc = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False" and "it/s" not in proc.stderr and "3/3" not in proc.stderr
    loud = {k: v for k, v in env.items() if k not in QUIET_BARS}
    proc = subprocess.run(
        [sys.executable, "-c", child], env=loud, capture_output=True, text=True, timeout=120
    )
    assert "3/3" in proc.stderr


def test_ftpipe_verbose_turns_on_the_stages_debug_lines(monkeypatch) -> None:
    monkeypatch.setenv("FTPIPE_VERBOSE", "1")
    assert setup_logging("register").isEnabledFor(logging.DEBUG)
    logging.getLogger("ftpipe").setLevel(logging.NOTSET)
    monkeypatch.delenv("FTPIPE_VERBOSE")
    assert not setup_logging("register").isEnabledFor(logging.DEBUG)
