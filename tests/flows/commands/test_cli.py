"""The `ftpipe` command line: `--help` stays light, and the flow module is not a second command line."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

HELP_CHILD = """
import sys
from flows.commands.cli import main
try:
    main(["--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
heavy = [m for m in ("prefect", "mlflow", "torch", "transformers") if m in sys.modules]
print("imported:", ",".join(heavy) or "none")
"""


def test_help_lists_the_commands_and_imports_no_prefect_mlflow_or_torch() -> None:
    """flows/commands/cli.py imports the flows modules at its top: none of them may pull in Prefect (whose settings
    are read at import, before `main` turns its telemetry off), MLflow or torch."""
    proc = subprocess.run([sys.executable, "-c", HELP_CHILD], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for command in ("run", "serve-schedule", "check", "predict"):
        assert command in proc.stdout
    assert proc.stdout.strip().endswith("imported: none")


def test_the_flow_module_points_to_ftpipe_run() -> None:
    """`python -m flows.retrain` ran `ftpipe run` by importing flows.commands.cli, which imports flows.retrain: an
    import cycle. The flow module now says which command runs it, and fails rather than do nothing."""
    proc = subprocess.run(
        [sys.executable, "-m", "flows.retrain", "--force"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "ftpipe run" in proc.stderr and "python -m flows.commands.cli run" in proc.stderr
