"""The retraining loop end to end, with real components: the real stages and dvc.yaml on tiny in-process
models, a real `mlflow server` and a real `prefect server`, and the flow served on a short interval.

batch 1 -> champion v1; a second batch file lands -> the scheduled flow reruns ingest..register, the
candidate is compared with v1 on test rows v1 never saw, and non-inferiority promotes it; a third, broken
batch (texts cut short by a faulty export) -> validate stops the run before training, the champion stays,
and the summary says why.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.conftest import make_corpus, make_pipeline_repo
from tests.flows.served import Served, api, served_flow

MODEL = "scenario"
TINY_FINETUNE = {"epochs": 6, "learning_rate": 5e-3, "batch_size": 8, "warmup": 0.0, "patience": 3}


def write_batch(path: Path, rows: list[dict[str, str]], cut: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps({"text": r["text"][:cut] if cut else r["text"], "label": r["label"]}) + "\n")


def make_repo(root: Path, tiny_bert: Path) -> Path:
    """The real stages, dvc.yaml and params.yaml: a tiny model, a batch folder source, a lenient floor."""
    return make_pipeline_repo(
        root,
        {
            "ingest": {"source": "data/external/batches"},
            "tokenize": {"model": str(tiny_bert), "max_length": 32, "windows": 1},
            "validate": {"min_rows_per_split": 2, "min_batch_rows": 10},
            "finetune": {**TINY_FINETUNE, "eval_batch_size": 32},
            "register": {
                "model_name": MODEL,
                "retries": 1,
                "backoff_s": 0.2,
                "verify_rows": 16,
                "gate": {"min_primary": 0.5, "baseline_tolerance": 1.0, "baseline_margin": -1.0},
            },
        },
    )


def wait_for_run(
    served: Served, after: float, want: Callable[[dict], bool], timeout: float
) -> tuple[dict, str]:
    """The first finished flow run that started after `after` (epoch s) and satisfies `want`, with its summary."""
    deadline = time.monotonic() + timeout
    while True:
        assert served.proc.poll() is None, served.log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no such run:\n" + served.log.read_text()[-4000:]
        time.sleep(2)
        runs = api(served.url, "/flow_runs/filter", {"sort": "EXPECTED_START_TIME_ASC"})
        for run in runs:
            if run["state_type"] not in ("COMPLETED", "FAILED") or not run.get("start_time"):
                continue
            started = time.mktime(time.strptime(run["start_time"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
            if started < after:
                continue
            arts = api(served.url, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
            summary = next((a["data"] for a in arts if a.get("type") == "markdown"), "")  # not the result
            if want({**run, "summary": summary}):
                return run, summary


def test_batches_land_champion_moves_and_a_broken_batch_is_stopped(
    tiny_bert: Path, mlflow_server: str, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    repo = make_repo(tmp_path / "repo", tiny_bert)
    batches = repo / "data" / "external" / "batches"
    write_batch(batches / "2026-10.jsonl", make_corpus(40, seed=0))
    client = MlflowClient(mlflow_server)
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with served_flow(tmp_path, repo, interval=15, extra_env=env) as served:
        # batch 1: the first scheduled run trains and registers v1, which becomes champion
        _, first = wait_for_run(served, 0, lambda r: r["state_type"] == "COMPLETED", 400)
        n = len(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])
        assert f"**Ran {n} of {n} stages**" in first, first
        assert client.get_model_version_by_alias(MODEL, "champion").version == "1"

        # batch 2 lands: the next run reruns ingest..register and promotes under non-inferiority
        landed = time.time()
        write_batch(batches / "2026-11.jsonl", make_corpus(15, seed=1))
        _, second = wait_for_run(
            served, landed, lambda r: "Ran " in r["summary"] or r["state_type"] == "FAILED", 400
        )
        assert "FAILED" not in second, second
        label = json.loads((repo / "reports" / "label.json").read_text())
        assert (
            sum(label["movement"]["changed_side"].values()) == 0
            and sum(label["movement"]["new"].values()) > 0
        )
        registry = json.loads((repo / "reports" / "registry.json").read_text())
        gate = registry["gate"]
        assert gate["policy"] == "non_inferiority" and gate["champion_before"] == "1"
        cmp = gate["comparison"]
        assert cmp["champion_trained_on_record"] and cmp["left_out_seen"] == 0  # the split stayed put
        assert cmp["rows"] == cmp["test_rows"] > 0
        assert gate["promote"], gate["checks"]
        assert client.get_model_version_by_alias(MODEL, "champion").version == "2"
        assert "Drift against champion v1 (before training, this run)" in second  # the drift stage

        # a broken batch: stopped by validate, nothing trained, the champion stays, the summary says why
        landed = time.time()
        broken = [{**r, "text": r["text"][:21]} for r in make_corpus(12, seed=2)]
        write_batch(batches / "2026-12.jsonl", broken)
        run, third = wait_for_run(served, landed, lambda r: r["state_type"] == "FAILED", 300)
        assert "**FAILED** at stage `validate`" in third, third
        assert "batch file `2026-12.jsonl`" in third and "validate.min_batch_median_ratio" in third
        assert "| finetune | not run |" in third
        assert client.get_model_version_by_alias(MODEL, "champion").version == "2"
        assert not (repo / "data" / "processed" / "profile.json").exists()
