"""Fixtures for the Prefect flows: one temporary Prefect server per session, and a tiny git+DVC repo.

The tiny repo has its own four-stage `dvc.yaml` (prepare -> train -> report -> register) of trivial
Python steps, so the flow logic (DAG, skip vs run, failures, overrides, summary) is tested in seconds.
`report` writes a metrics.json and `register` (always_changed, like ftpipe's) a registry.json in the
shapes that ftpipe's evaluate and register stages write.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_cmd

# Listed out of dependency order on purpose: the flow must take its order from the DAG, not the file.
TINY_DVC_YAML = """\
stages:
  report:
    cmd: python step.py report model.txt reports/metrics.json
    deps: [step.py, model.txt]
    metrics:
      - reports/metrics.json:
          cache: false
  prepare:
    cmd: python step.py prepare data.txt prepared.txt
    deps: [step.py, data.txt]
    outs: [prepared.txt]
  train:
    cmd: python step.py train prepared.txt model.txt
    deps: [step.py, prepared.txt]
    params: [train.factor]
    outs: [model.txt]
  register:
    cmd: python step.py register reports/metrics.json reports/registry.json
    deps: [step.py, reports/metrics.json]
    always_changed: true
    metrics:
      - reports/registry.json:
          cache: false
"""

TINY_PARAMS = """\
train:
  factor: 1       # how many times train repeats its input

retrain:
  schedule_cron: "0 3 * * 1"
  timezone: UTC
"""

TINY_STEP = '''\
"""One step of the tiny pipeline: python step.py NAME SRC DST."""
import hashlib
import json
import pathlib
import sys

import yaml

name, src, dst = sys.argv[1:4]
text = pathlib.Path(src).read_text()
print(f"{name}: reading {src}", file=sys.stderr)
if "FAIL" in text.split():
    line = text.split("\\n").index("FAIL") + 1
    raise ValueError(f"{name}: {src} line {line} says FAIL; remove that line and run again")
out = pathlib.Path(dst)
out.parent.mkdir(parents=True, exist_ok=True)
if name == "report":
    n = len(text.split())
    metrics = {"primary_metric": "macro_f1", "model": {"accuracy": 0.9, "macro_f1": round(0.5 + n / 100, 4)},
               "baseline": {"accuracy": 0.7, "macro_f1": 0.6}}
    out.write_text(json.dumps(metrics))
elif name == "register":
    flaky = pathlib.Path(".flaky")
    if flaky.exists():
        flaky.unlink()
        raise ConnectionError("registry unreachable (simulated)")
    digest = hashlib.md5(text.encode()).hexdigest()
    state = pathlib.Path(".registered")
    seen = state.read_text().split() if state.exists() else []
    action = "unchanged" if seen and seen[-1] == digest else "registered"
    if action == "registered":
        seen.append(digest)
        state.write_text("\\n".join(seen))
    out.write_text(json.dumps({
        "action": action, "name": "tiny", "version": str(len(seen)), "run_id": "run-" + digest[:6],
        "aliases": ["challenger", "champion"], "champion": str(len(seen)), "promoted": True,
        "gate": {"decision": "promote", "promote": True, "champion_before": None, "checks": [
            {"name": "floor", "outcome": "pass", "reason": "macro_f1 above 0.5"},
            {"name": "significance", "outcome": "skip", "reason": "no champion yet"},
        ]},
    }))
else:
    factor = yaml.safe_load(open("params.yaml"))["train"]["factor"] if name == "train" else 1
    out.write_text(" ".join([text.strip(), name] * factor))
'''

DVC_ENV = {"DVC_NO_ANALYTICS": "1"}


def make_tiny_repo(path: Path) -> Path:
    """A git + DVC repo with the tiny pipeline; nothing run yet."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dvc.yaml").write_text(TINY_DVC_YAML)
    (path / "params.yaml").write_text(TINY_PARAMS)
    (path / "step.py").write_text(TINY_STEP)
    (path / "data.txt").write_text(textwrap.dedent("alpha\nbeta\n"))
    run_cmd(["git", "init", "-q"], cwd=path, env=DVC_ENV)
    run_cmd(["dvc", "init", "-q"], cwd=path, env=DVC_ENV)
    run_cmd(["dvc", "config", "core.analytics", "false"], cwd=path, env=DVC_ENV)
    return path


@pytest.fixture(scope="session")
def _tiny_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_repo(tmp_path_factory.mktemp("tiny-template") / "repo")


@pytest.fixture
def tiny_repo(_tiny_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny repo (git init + dvc init are done once per session)."""
    return Path(shutil.copytree(_tiny_template, tmp_path / "repo", symlinks=True))


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server (SQLite) for all flow tests in the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
