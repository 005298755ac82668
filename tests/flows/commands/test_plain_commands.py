"""The plain commands start no Prefect and import only what they use (issue 21).

`ftpipe check` took 12 s on a busy 2-vCPU machine: every command imported DVC's repo machinery,
networkx and pandas at start-up, whatever it did. Each command here runs in its own Python process and
reports, at exit, which heavy packages it imported; a top-level `import prefect` (or mlflow, torch, ...)
anywhere on a plain command's path fails these tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from stages.registry import tags as registry_tags
from tests.conftest import REPO
from tests.factories import TINY_FILES, register_version

# runs the real `ftpipe` entry point for each argv given (as JSON), then prints the heavy modules
# loaded (at exit, so an import made anywhere during a command counts)
PROBE = """
import atexit, json, sys
HEAVY = {heavy!r}
def report():
    loaded = sorted(m for m in HEAVY if m in sys.modules)
    sys.stderr.write("\\nLOADED " + json.dumps(loaded) + "\\n")
atexit.register(report)
from flows.commands.cli import main
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
    except SystemExit as exc:
        if exc.code:
            raise
"""
# never for a plain command: the flow engine and the model libraries
NEVER = ["prefect", "torch", "transformers", "datasets", "sklearn"]
# not for `ftpipe check` either: the registry client, DVC's repo machinery and its graph library, and the
# table libraries (flows/commands/predict/*.py import pandas and pyarrow where a batch is read or written)
NOT_FOR_CHECK = [*NEVER, "mlflow", "sqlalchemy", "dvc.repo", "networkx", "pandas", "pyarrow"]


def probe(
    argvs: list[list[str]], cwd: Path, heavy: list[str], env: dict[str, str] | None = None
) -> list[str]:
    """Run the commands in one fresh process; the `heavy` modules it imported (it must exit 0)."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), json.dumps(argvs)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("LOADED "), proc.stderr[-3000:]
    loaded: list[str] = json.loads(last.removeprefix("LOADED "))
    return loaded


def test_check_imports_no_prefect_mlflow_or_dvc_repo(tiny_repo: Path) -> None:
    assert probe([["check"]], tiny_repo, NOT_FOR_CHECK) == []


def test_the_registry_commands_import_no_prefect(sqlite_store: str, tmp_path: Path) -> None:
    """history, promote, rollback and fetch against a SQLite store: MLflow, and nothing of Prefect."""
    from mlflow import MlflowClient

    uri = sqlite_store
    for _ in range(2):
        register_version(
            uri, "m", files=TINY_FILES, tags={registry_tags.STATUS: registry_tags.COMPLETE}, aliases=()
        )
    client = MlflowClient(uri, registry_uri=uri)
    common = ["--name", "m", "--params", str(tmp_path / "absent.yaml")]
    argvs: list[list[Any]] = [
        ["history", *common],
        ["promote", "1", "--reason", "first", *common],
        ["promote", "2", "--reason", "second", *common],
        ["rollback", "--reason", "back", *common],
        ["fetch", "champion", str(tmp_path / "copy"), *common],
    ]
    assert probe(argvs, tmp_path, NEVER, env={"MLFLOW_TRACKING_URI": uri}) == []
    assert str(client.get_model_version_by_alias("m", "champion").version) == "1"
    assert (tmp_path / "copy" / "weights.txt").is_file()
