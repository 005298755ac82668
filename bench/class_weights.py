"""`finetune.class_weights: none` vs `balanced` on BBC News made skewed: macro-F1 over seeded splits.

    .venv/bin/python -m bench.class_weights --seeds 1 2 3 4 5                    # the full recipe (hours on a CPU)
    .venv/bin/python -m bench.class_weights --max-train-samples 300 --epochs 2 --max-length 64   # a smaller one

One class (`--rare`, business by default) is cut to `--keep` (5%) of its rows, the same seeded cut for
every seed; then, per seed s, the label stage's own split (`label.seed = s`, stable) gives train,
validation and test, the tokenize stage's `encode_batch` encodes them (one window of `--max-length`),
and `run_finetune` trains twice from the same seed, unweighted and with balanced weights, early-stopped
on validation macro-F1. Each model is scored on the test split: macro-F1, the rare class's F1 and
recall, accuracy and ECE. The paired difference balanced - none is summarised over the seeds.
Results go to `--out` (bench/class_weights.json, git-ignored); a (seed, arm) already in it is not rerun.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
from datasets import Dataset, DatasetDict
from transformers import AutoTokenizer, DataCollatorWithPadding

from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.data.sources import resolve_source
from stages.model.metrics import classification_metrics
from stages.model.recipe import Paths, run_finetune
from stages.model.resolve import resolve_model
from stages.serving.meanpool import load_classifier

ROOT = Path(__file__).resolve().parents[1]
MODEL = "builtin:minilm-l6"
ARMS = ("none", "balanced")


def skewed_bbc(rare: str, keep: float) -> pd.DataFrame:
    """BBC News (one folder of .txt per class) with `rare` cut to a seeded `keep` share of its rows."""
    root = resolve_source("builtin:bbc-news").root
    rows = [
        {
            "id": f"{f.parent.name}/{f.name}",
            "text": f.read_text(errors="replace").strip(),
            "label": f.parent.name,
        }
        for f in sorted(root.glob("*/*.txt"))
    ]
    df = pd.DataFrame(rows)
    if rare not in set(df["label"]):
        raise SystemExit(f"bench.class_weights: no class `{rare}`; classes: {sorted(set(df['label']))}")
    idx = df.index[df["label"] == rare].to_numpy()
    cut = np.random.default_rng(0).choice(idx, size=len(idx) - max(1, round(keep * len(idx))), replace=False)
    return df.drop(index=cut).assign(group=lambda d: d["id"]).reset_index(drop=True)


def build_splits(df: pd.DataFrame, seed: int, max_length: int, out: Path) -> tuple[Path, Path, list[str]]:
    """The label stage's contract (splits DatasetDict + labels.json) for one seed of the stable split: the
    tests' builder (tokenize's encode_batch, label's split_groups; each row its own group)."""
    from tests.conftest import build_splits as splits_from_rows

    rows = cast(list[dict[str, str]], df[["id", "text", "label"]].to_dict(orient="records"))
    splits, labels = splits_from_rows(resolve_model(MODEL), rows, out, max_length=max_length, label_seed=seed)
    return splits, labels, sorted(set(df["label"]))


def test_scores(model_dir: Path, test: Dataset, names: list[str], rare: str) -> dict[str, float]:
    """The saved model on the test split (one window per text): macro-F1, rare-class F1/recall, ECE."""
    model = load_classifier(str(model_dir)).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    collate = DataCollatorWithPadding(tok)
    cols = [c for c in tok.model_input_names if c in test.column_names]
    probs = []
    with torch.no_grad():
        for i in range(0, len(test), 64):
            batch = collate([{c: test[j][c] for c in cols} for j in range(i, min(i + 64, len(test)))])
            probs.append(torch.softmax(model(**batch).logits.float(), dim=-1).numpy())
    p = np.concatenate(probs)
    y = np.asarray(test["label"])
    m = classification_metrics(y, p.argmax(axis=1), names, p)
    rare_m = m["per_class"][rare]
    return {
        "macro_f1": m["macro_f1"],
        "accuracy": m["accuracy"],
        "ece": m["ece"],
        "rare_f1": rare_m["f1"],
        "rare_recall": rare_m["recall"],
        "rare_test_rows": rare_m["support"],
    }


def summarise(runs: dict[str, dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Per arm the mean and spread of each figure over the seeds; the paired balanced - none difference."""
    out: dict[str, Any] = {}
    keys = ("macro_f1", "rare_f1", "rare_recall", "accuracy", "ece")
    done = [s for s in seeds if all(f"{s}/{a}" in runs for a in ARMS)]
    for k in keys:
        for arm in ARMS:
            xs = [runs[f"{s}/{arm}"][k] for s in done]
            out[f"{arm}_{k}"] = round(statistics.fmean(xs), 4) if xs else None
        diffs = [runs[f"{s}/balanced"][k] - runs[f"{s}/none"][k] for s in done]
        out[f"delta_{k}"] = {
            "mean": round(statistics.fmean(diffs), 4) if diffs else None,
            "std": round(statistics.stdev(diffs), 4) if len(diffs) > 1 else None,
            "better_in": sum(d > 0 for d in diffs),
            "of": len(diffs),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--rare", default="business", help="the class cut down")
    ap.add_argument("--keep", type=float, default=0.05, help="share of the rare class's rows kept")
    ap.add_argument("--epochs", type=int, default=FinetuneParams().epochs)
    ap.add_argument("--max-train-samples", type=int, default=None, help="a seeded sample of the train split")
    ap.add_argument("--max-length", type=int, default=128, help="tokens of the one window per text")
    ap.add_argument(
        "--work", default="bench/class_weights-work", help="per-seed data and models (git-ignored)"
    )
    ap.add_argument("--out", default="bench/class_weights.json")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    log = logging.getLogger("bench.class_weights")
    out = ROOT / a.out
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    config = {k: getattr(a, k) for k in ("rare", "keep", "epochs", "max_train_samples", "max_length")}
    if result.get("config") != config:
        result = {"config": config, "runs": {}}
    df = skewed_bbc(a.rare, a.keep)
    t0 = time.perf_counter()
    for seed in a.seeds:
        d = ROOT / a.work / f"seed-{seed}"
        if all(f"{seed}/{arm}" in result["runs"] for arm in ARMS):
            continue
        splits, labels, names = build_splits(df, seed, a.max_length, d)
        test = DatasetDict.load_from_disk(str(splits))["test"]
        for arm in ARMS:
            if f"{seed}/{arm}" in result["runs"]:
                continue
            r = d / arm
            params = FinetuneParams(
                epochs=a.epochs,
                seed=seed,
                class_weights=arm,
                max_train_samples=a.max_train_samples,
                precision="fp32",
            )
            paths = Paths(splits, labels, r / "model", r / "ckpt", r / "finetune.json", r / "history.json",
                          r / "curves.png")  # fmt: skip
            report = run_finetune(params, BaseModelRef(model=MODEL), paths, log)
            scores = test_scores(r / "model", test, names, a.rare)
            result["runs"][f"{seed}/{arm}"] = {
                **scores,
                "best_epoch": report["best_epoch"] if report else None,
                "class_weights": report.get("class_weights") if report else None,
            }
            print(f"seed {seed} {arm}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()), flush=True)
            out.write_text(json.dumps(result, indent=2) + "\n")
    result["summary"] = summarise(result["runs"], a.seeds)
    result["rows"] = {"total": len(df), a.rare: int((df["label"] == a.rare).sum())}
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
