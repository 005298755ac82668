"""Issue 22: a failed register says why in one masked paragraph and leaves the last registry report.

The stage's own process against an MLflow store that is down (a port nothing listens on), and a real
`dvc repro` of a stage declared with register's outputs, as dvc.yaml declares them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cmd
from tests.registry_support import Workspace, free_port

PASSWORD = "".join(["s3", "cret"])  # spelled apart, so a traceback's source lines never hold it
PREVIOUS = {"action": "registered", "name": "m", "version": "3", "aliases": ["champion"]}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A candidate register accepts (an untrained tiny model: nothing here gets as far as the gate)."""
    ws = Workspace(tmp_path_factory.mktemp("register-failure"), n_per_class=20)
    return ws.candidate("constant", "constant")


def run_register(inputs: dict[str, Path], tmp: Path, *extra: str, env: dict[str, str] | None = None):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["register"].update(model_name="down", retries=0, timeout_s=2, backoff_s=0.1)
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp / "registry.json"
    out.write_text(json.dumps(PREVIOUS))  # what the last good run wrote
    args = ["--params", str(tmp / "params.yaml"), "--out", str(out), "--lock", str(tmp / "dvc.lock")]
    for key in ("model", "metrics", "predictions", "splits", "labels"):
        args += [f"--{key}", str(inputs[key])]
    port = free_port()  # nothing listens there: the store is down
    base = {k: v for k, v in os.environ.items() if k != "FTPIPE_VERBOSE"}
    proc = subprocess.run(
        [sys.executable, "-m", "stages.register", *args, *extra],
        cwd=REPO,
        env={**base, "MLFLOW_TRACKING_URI": f"http://ftp:{PASSWORD}@127.0.0.1:{port}", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, out, port


def test_a_store_that_is_down_gives_one_masked_paragraph_and_keeps_the_report(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    proc, out, port = run_register(inputs, tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and 'File "' not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if " register ERROR " in ln]
    assert len(errors) == 1 and proc.stderr.strip().splitlines()[-1] == errors[0]
    assert (
        f"TrackingUnavailable: MLflow tracking store at http://ftp:***@127.0.0.1:{port} did not answer"
        in (errors[0])
    )
    assert "connection refused" in errors[0] and "FTPIPE_VERBOSE=1" in errors[0]
    assert PASSWORD not in proc.stderr + proc.stdout
    assert json.loads(out.read_text()) == PREVIOUS  # the last good report is left as it was
    assert not list(tmp_path.glob(".registry.json.*"))


@pytest.mark.parametrize("how", ["flag", "env"])
def test_verbose_adds_the_masked_traceback_before_the_paragraph(
    inputs: dict[str, Path], tmp_path: Path, how: str
) -> None:
    extra, env = (["--verbose"], None) if how == "flag" else ([], {"FTPIPE_VERBOSE": "1"})
    proc, out, port = run_register(inputs, tmp_path, *extra, env=env)
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert " register ERROR TrackingUnavailable: " in proc.stderr.strip().splitlines()[-1]
    assert PASSWORD not in proc.stderr + proc.stdout and f"ftp:***@127.0.0.1:{port}" in proc.stderr
    assert json.loads(out.read_text()) == PREVIOUS


FAKE_STAGE = """
import pathlib, sys
if pathlib.Path("fail").exists():
    sys.exit("register failed")
pathlib.Path("reports").mkdir(exist_ok=True)
pathlib.Path("reports/registry.json").write_text('{"version": "1"}')
pathlib.Path("reports/report.html").write_text("<html></html>")  # the run's page, an output too
"""


def test_dvc_keeps_the_last_registry_report_when_register_fails(tmp_path: Path) -> None:
    """DVC removes a stage's outputs before it runs it, unless they are `persist: true`: with dvc.yaml's
    declaration of reports/registry.json, a failed register run must leave the last report in place."""
    register = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["register"]
    stage = {"cmd": f"{sys.executable} fake_register.py", "always_changed": True, "outs": register["outs"]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"register": stage}}))
    (tmp_path / "fake_register.py").write_text(FAKE_STAGE)
    run_cmd(["dvc", "init", "--no-scm", "-q"], tmp_path)
    run_cmd(["dvc", "repro", "register"], tmp_path)
    assert (tmp_path / "reports" / "registry.json").read_text() == '{"version": "1"}'
    (tmp_path / "fail").touch()
    proc = run_cmd(["dvc", "repro", "register"], tmp_path, check=False)
    assert proc.returncode != 0 and "register failed" in proc.stdout + proc.stderr
    assert (tmp_path / "reports" / "registry.json").read_text() == '{"version": "1"}'
