"""The default registry (`mlflow.db`) is the real repository's, also under `dvc exp run --temp`.

DVC runs a temporary or queued experiment in a copy of the workspace under `.dvc/tmp/exps/` and deletes
it afterwards; a registry resolved from the code's own location would be created, and lost, there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

PROBE_DVC_YAML = """\
stages:
  probe:
    cmd: python -c "import os; from stages.registry.tracking import tracking_uri; open(os.environ['PROBE_OUT'], 'w').write(tracking_uri())"
    deps: [seed.txt]
"""


def test_dvc_exp_run_temp_registers_in_the_real_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(REPO / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "dvc.yaml").write_text(PROBE_DVC_YAML)
    (repo / "seed.txt").write_text("1\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH", "DVC_ROOT")}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "PROBE_OUT": str(tmp_path / "uri.txt"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "x"],
    ):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    proc = subprocess.run(
        ["dvc", "exp", "run", "--temp"], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the stage ran in DVC's temporary copy (its `stages` package imported from there), yet the
    # registry it resolves is the repository's own
    assert (tmp_path / "uri.txt").read_text() == f"sqlite:///{repo.resolve()}/mlflow.db"


def test_the_default_registry_follows_the_workspace_not_the_installed_code(tmp_path: Path) -> None:
    """One checkout's `ftpipe` (its venv, its code) run in another checkout reads that checkout's registry
    (issue #34, item 8): from its root, from a folder below it, and in a folder that is no workspace."""
    other = tmp_path / "other"
    (other / "reports" / "deep").mkdir(parents=True)
    (other / "dvc.yaml").write_text("stages: {}\n")
    loose = tmp_path / "loose"
    loose.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT")}
    env["PYTHONPATH"] = str(REPO)  # the code of this checkout, as its venv's console script would load it
    code = "from stages.registry.tracking import tracking_uri; print(tracking_uri())"
    for cwd, expected in ((other, other), (other / "reports" / "deep", other), (loose, loose)):
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
        )
        assert proc.stdout.strip() == f"sqlite:///{expected.resolve() / 'mlflow.db'}", (cwd, proc.stdout)
