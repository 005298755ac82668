"""Accuracy over several seeded splits: the fine-tuned model and the TF-IDF baseline, mean and spread.

    .venv/bin/python -m bench.accuracy --seeds 1 2 3 4 5
    .venv/bin/python -m bench.accuracy --seeds 1 2 3 --set tokenize.max_length=256 --set tokenize.windows=4

One test split of BBC News holds about 320 articles, so one article moves accuracy by 0.003 and a single
run's figure has a standard error near 0.01. This benchmark reruns the real stages (`label` with
`label.seed = s`, `finetune` with `finetune.seed = s`, then `evaluate`) for each seed and reports the
mean, the spread and the paired difference to the baseline, so a recipe change can be judged on more
than one draw. `--set section.key=value` overrides params.yaml (validated by the stages as usual); a
`tokenize.*` override retokenizes once into the work folder. Needs `data/interim` (run `make run` or
`dvc repro clean` first). Each seed's outputs stay under `--work`; a seed whose metrics exist is not
rerun, so an interrupted benchmark resumes. Results go to `bench/accuracy.json` (git-ignored).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from stages.config.paths import PATHS, path_argv

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("accuracy", "macro_f1")


def parse_override(item: str) -> tuple[str, str, Any]:
    """`section.key=value` -> (section, key, YAML-parsed value)."""
    path, sep, raw = item.partition("=")
    section, dot, key = path.partition(".")
    if not sep or not dot or not section or not key:
        raise SystemExit(f"bench.accuracy: --set {item!r} is not section.key=value (e.g. finetune.epochs=4)")
    value = yaml.safe_load(raw)
    if isinstance(value, str):  # YAML 1.1 reads 5e-5 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    return section, key, value


def seed_params(base: dict[str, Any], overrides: list[tuple[str, str, Any]], seed: int) -> dict[str, Any]:
    """params.yaml with the overrides applied and the split and training seeds set to `seed`."""
    params = copy.deepcopy(base)
    for section, key, value in overrides:
        if section not in params:
            raise SystemExit(f"bench.accuracy: params.yaml has no section `{section}` (from --set)")
        params[section][key] = value
    params["label"]["seed"] = seed
    params["finetune"]["seed"] = seed
    return params


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max per metric, and the model-minus-baseline difference."""
    out: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
    for who in ("model", "baseline", "delta"):
        for m in METRICS:
            xs = [r[who][m] for r in runs]
            out[f"{who}_{m}"] = {
                "mean": round(statistics.fmean(xs), 4),
                "std": round(statistics.stdev(xs), 4) if len(xs) > 1 else None,
                "min": round(min(xs), 4),
                "max": round(max(xs), 4),
            }
    return out


def _stage(module: str, log: Path, *args: str, env: dict[str, str]) -> None:
    with log.open("w") as fh:
        proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, stdout=fh, stderr=fh, env=env)
    if proc.returncode:
        raise SystemExit(f"bench.accuracy: `{module}` failed (exit {proc.returncode}); see {log}")


def run_seed(
    work: Path, params: dict[str, Any], tokenized: str, seed: int, env: dict[str, str]
) -> dict[str, Any]:
    """label -> finetune -> evaluate for one seed, in work/seed-<seed>; returns its figures."""
    d = work / f"seed-{seed}"
    metrics = d / "metrics.json"
    if not metrics.exists():
        d.mkdir(parents=True, exist_ok=True)
        (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        p = str(d / "params.yaml")
        shared = {"splits": str(d / "splits"), "labels": str(d / "labels.json")}
        _stage("stages.label", d / "label.log", "--params", p, *path_argv("label", tokenized=tokenized,
               out=shared["splits"], labels=shared["labels"], quarantine=str(d / "quarantine.jsonl"),
               ledger=str(d / "split_ledger.parquet"), report=str(d / "label.json")), env=env)  # fmt: skip
        _stage("stages.finetune", d / "finetune.log", "--params", p, *path_argv("finetune", **shared,
               out=str(d / "model"), checkpoints=str(d / "checkpoints"), report=str(d / "finetune.json"),
               history=str(d / "history.json"), plot=str(d / "curves.png")), env=env)  # fmt: skip
        _stage("stages.evaluate", d / "evaluate.log", "--params", p, *path_argv("evaluate", **shared,
               model=str(d / "model"), metrics=str(d / "metrics.tmp.json"), headline=str(d / "headline.json"),
               predictions=str(d / "predictions.csv"), confusion=str(d / "confusion.json"),
               confusion_png=str(d / "confusion.png"), errors=str(d / "worst_errors.csv")), env=env)  # fmt: skip
        (d / "metrics.tmp.json").replace(metrics)  # the resume marker appears only after all three stages
    m = json.loads(metrics.read_text())
    ft = json.loads((d / "finetune.json").read_text())
    return {
        "seed": seed,
        "model": {k: m["model"][k] for k in METRICS},
        "baseline": {k: m["baseline"][k] for k in METRICS},
        "delta": {k: m["delta"][k] for k in METRICS},  # evaluate writes model - baseline
        "test_rows": sum(v["support"] for v in m["model"]["per_class"].values()),
        "best_epoch": ft["best_epoch"],
        "train_runtime_s": ft["train_runtime_s"],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--work", default="bench/accuracy-work", help="per-seed outputs (git-ignored)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per stage (default: all cores)")
    ap.add_argument("--target", type=float, default=0.98, help="the accuracy and macro-F1 target to check")
    ap.add_argument("--out", default="bench/accuracy.json")
    a = ap.parse_args(argv)

    overrides = [parse_override(x) for x in a.overrides]
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    work = (ROOT / a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if a.threads:
        env |= {"OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}

    tokenized = str(ROOT / str(PATHS["label"]["tokenized"]))
    if any(section == "tokenize" for section, _, _ in overrides):
        tokenized = str(work / "tokenized")
        if not (work / "tokenize.json").exists():
            tp = work / "tokenize-params.yaml"
            tp.write_text(yaml.safe_dump(seed_params(base, overrides, 0), sort_keys=False))
            _stage("stages.tokenize", work / "tokenize.log", "--params", str(tp), *path_argv("tokenize",
                   out=tokenized, report=str(work / "tokenize.json")), env=env)  # fmt: skip

    runs = []
    t0 = time.perf_counter()
    for seed in a.seeds:
        runs.append(run_seed(work, seed_params(base, overrides, seed), tokenized, seed, env))
        r = runs[-1]
        print(f"seed {seed}: model acc {r['model']['accuracy']:.4f} f1 {r['model']['macro_f1']:.4f} | baseline acc "
              f"{r['baseline']['accuracy']:.4f} f1 {r['baseline']['macro_f1']:.4f} | best epoch {r['best_epoch']}",
              flush=True)  # fmt: skip
    summary = summarise(runs)
    result = {
        "overrides": a.overrides,
        "runs": runs,
        "summary": summary,
        "target": a.target,
        "pass": all(summary[f"model_{m}"]["mean"] >= a.target for m in METRICS),
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(summary, indent=2))
    print(f"target {a.target}: {'met' if result['pass'] else 'not met'} (mean over {len(runs)} seeds)")
    out = ROOT / a.out
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
