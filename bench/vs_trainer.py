"""vs_trainer: the finetune stage against a plain Hugging Face `Trainer` script, side by side in one run.

Both train the packaged MiniLM on the same BBC train split (`data/processed/splits`, from `make run`)
for the same epochs, batch size and learning rate (params.yaml's), one after the other in this process's
machine, then score the same test split. Throughput is Trainer's own definition for both:
train rows x epochs / train_runtime (evaluation inside training included). The stage reads every window
of its validation texts each epoch and keeps the best epoch; the plain script evaluates nothing.

    .venv/bin/python -m bench.vs_trainer --epochs 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ROOT / "data" / "processed" / "splits"
LABELS = ROOT / "data" / "processed" / "labels.json"


def _last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON result in the output:\n{text[-2000:]}")


def run_stage(work: Path, epochs: int) -> dict[str, Any]:
    """The real finetune stage (its CLI, shipped params with `epochs` set), then its test accuracy."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["finetune"]["epochs"] = epochs
    params["finetune"]["patience"] = 0
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    out = work / "stage"
    cmd = [sys.executable, "-m", "stages.finetune", "--params", str(work / "params.yaml")]
    cmd += ["--splits", str(SPLITS), "--labels", str(LABELS), "--out", str(out / "model")]
    cmd += ["--checkpoints", str(out / "ckpt"), "--report", str(out / "finetune.json")]
    cmd += ["--history", str(out / "history.json"), "--plot", str(out / "curves.png")]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    report = json.loads((out / "finetune.json").read_text())
    score = subprocess.run(
        [sys.executable, "-c", SCORE_CHILD, str(out / "model"), str(SPLITS)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    acc = _last_json_line(score.stdout)["test_accuracy"]
    return {
        "train_samples_per_s": round(
            report["train_rows"] * report["epochs_run"] / report["train_runtime_s"], 3
        ),
        "step_samples_per_s": report["train_samples_per_s"],
        "train_runtime_s": report["train_runtime_s"],
        "precision": report["precision"],
        "test_accuracy": acc,
    }


SCORE_CHILD = """
import json, sys
from pathlib import Path
import numpy as np
from datasets import load_from_disk
from stages.evaluate import predict_proba
test = load_from_disk(sys.argv[2])["test"]
probs, _, _ = predict_proba(Path(sys.argv[1]), test, 32)
print(json.dumps({"test_accuracy": round(float((probs.argmax(1) == np.asarray(test["label"])).mean()), 4)}))
"""


def run_plain(work: Path, epochs: int) -> dict[str, Any]:
    ft = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["finetune"]
    cmd = [sys.executable, "-m", "bench.plain_trainer", "--splits", str(SPLITS), "--out", str(work / "plain")]
    cmd += ["--epochs", str(epochs), "--batch-size", str(ft["batch_size"])]
    cmd += ["--learning-rate", str(ft["learning_rate"])]
    proc = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return _last_json_line(proc.stdout)


def bench_vs_trainer(epochs: int = 1) -> dict[str, Any]:
    if not (SPLITS / "dataset_dict.json").is_file():
        return {
            "error": f"{SPLITS} is missing: run `make run` (or `dvc repro validate`) first",
            "pass": False,
        }
    with tempfile.TemporaryDirectory(prefix="ftpipe-vs-trainer-") as tmp:
        work = Path(tmp)
        stage = run_stage(work, epochs)
        plain = run_plain(work, epochs)
    ratio = stage["train_samples_per_s"] / plain["train_samples_per_s"]
    return {
        "epochs": epochs,
        "stage": stage,
        "trainer": plain,
        "ratio": round(ratio, 3),
        "target": ">= 1.6x samples/s at equal or better test accuracy",
        "pass": ratio >= 1.6 and stage["test_accuracy"] >= plain["test_accuracy"],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args(argv)
    print(json.dumps(bench_vs_trainer(args.epochs), indent=2))


if __name__ == "__main__":
    main()
