"""A reviewer reproduces a colleague's run without retraining: push to the DVC remote, clone, pull, nothing runs.

The colleague's repo holds the real stages, dvc.yaml and the shipped `.dvc/config` (its default remote,
`~/.cache/ftpipe/dvc-remote`, lands in a temporary HOME), a tiny model and a small CSV. They run the
DAG, commit and `dvc push` (`make push`); the reviewer clones, `dvc pull`s (`make pull`) and finds every
stage up to date under `dvc status`, `dvc repro` and `ftpipe run`, with the colleague's metrics and model
byte for byte. Both share one MLflow registry, as a team does, so register finds the model registered.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from flows.commands.cli import build_parser
from tests.conftest import REPO, make_pipeline_repo, run_cmd

GIT_ID = {
    "GIT_AUTHOR_NAME": "colleague",
    "GIT_AUTHOR_EMAIL": "colleague@example.com",
    "GIT_COMMITTER_NAME": "colleague",
    "GIT_COMMITTER_EMAIL": "colleague@example.com",
}


def tree_bytes(root: Path, rel: str) -> dict[str, bytes]:
    base = root / rel
    files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_a_second_clone_pulls_and_runs_nothing(
    prefect_harness,
    tmp_path: Path,
    tiny_bert: Path,
    corpus: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    uri = f"sqlite:///{tmp_path / 'registry' / 'mlflow.db'}"
    (tmp_path / "registry").mkdir()
    env = {"HOME": str(home), "MLFLOW_TRACKING_URI": uri, **GIT_ID}

    # the colleague: the shipped DVC config, a tiny model, a full run, a commit, a push
    colleague = make_pipeline_repo(
        tmp_path / "colleague",
        {
            "ingest": {"source": "data/external/news.csv", "id_field": "id"},
            "tokenize": {"model": str(tiny_bert), "max_length": 16, "windows": 1},
            "validate": {"min_rows_per_split": 2},
            "finetune": {"epochs": 1, "batch_size": 16, "learning_rate": 5e-3, "warmup": 0.0},
            "register": {
                "model_name": "shared",
                "retries": 1,
                "backoff_s": 0.2,
                "verify_rows": 8,
                "gate": {"min_primary": 0.0, "baseline_tolerance": 1.0, "baseline_margin": -1.0},
            },
        },
    )
    shutil.copy(REPO / ".dvc" / "config", colleague / ".dvc" / "config")
    with open(colleague / ".gitignore", "a") as fh:
        fh.write("/reports/registry.json\n")  # as in the repository: this machine's registry
    with open(colleague / "data" / "external" / "news.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "text", "label"])
        w.writeheader()
        w.writerows(corpus)
    run_cmd(["dvc", "repro"], colleague, env)
    run_cmd(["git", "add", "-A"], colleague, env)
    run_cmd(["git", "commit", "-q", "-m", "a run"], colleague, env)
    pushed = run_cmd(["dvc", "push"], colleague, env).stdout
    assert "pushed" in pushed and (home / ".cache" / "ftpipe" / "dvc-remote" / "files").is_dir()

    # the reviewer: clone, pull, and nothing is stale but register (always run: the registry is external)
    reviewer = tmp_path / "reviewer"
    run_cmd(["git", "clone", "-q", str(colleague), str(reviewer)], tmp_path, env)
    run_cmd(["dvc", "pull"], reviewer, env)
    status = json.loads(run_cmd(["dvc", "status", "--json"], reviewer, env).stdout)
    # register alone, and for its own reasons: always run, and registry.json is this machine's (git-ignored)
    assert status == {
        "register": [{"changed outs": {"reports/registry.json": "deleted"}}, "always changed"]
    }, status

    out = run_cmd(["dvc", "repro"], reviewer, env).stdout
    for stage in (
        "check",
        "ingest",
        "clean",
        "tokenize",
        "label",
        "validate",
        "drift",
        "finetune",
        "evaluate",
    ):
        assert f"Stage '{stage}' didn't change, skipping" in out, out
    assert json.loads((reviewer / "reports" / "registry.json").read_text())["action"] == "unchanged"
    for rel in ("reports", "models/model", "data/processed/split_ledger.parquet"):
        # register's own outputs are rewritten by every run (it always runs): the registry report and the
        # run's page (its action "unchanged" and its date)
        theirs, mine = tree_bytes(colleague, rel), tree_bytes(reviewer, rel)
        for own in ("reports/registry.json", "reports/report.html"):
            theirs.pop(own, None)
            mine.pop(own, None)
        assert mine == theirs, rel
    shown = [run_cmd(["dvc", "metrics", "show", "--json"], r, env).stdout for r in (colleague, reviewer)]
    assert shown[0] == shown[1] and "headline.json" in shown[0]
    # only register's entry in dvc.lock moved: the hash of this machine's registry.json
    assert run_cmd(["git", "status", "--porcelain", "--untracked-files=no"], reviewer, env).stdout in (
        "",
        "M  dvc.lock\n",
    )
    locks = [yaml.safe_load((r / "dvc.lock").read_text())["stages"] for r in (colleague, reviewer)]
    for lock in locks:
        del lock["register"]["outs"]
    assert locks[0] == locks[1]

    # the flow says the same: every stage skipped, the model already registered
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    args = build_parser().parse_args(["run", "--root", str(reviewer)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "**Up to date**" in printed and "this model is already registered" in printed, printed
