"""inference: texts/s wherever a model predicts, side by side on the same BBC test articles.

- `evaluate`: the evaluate stage's path (pre-tokenized windows from data/processed/splits);
- `pyfunc`: the served model's class (`stages/serving/textclf.py`, the one `ftpipe predict`, the gate's
  champion scoring and `mlflow models serve` run), on the raw texts: fp32, `quantize: int8` and
  `precision: auto` (bf16 autocast where the CPU has native bf16), each one's prediction agreement with
  fp32 reported; the fp32 path's achieved forward GFLOP/s against this machine's fp32 matmul peak
  (`pyfunc_peak_ratio`: how much room a faster fp32 kernel could find). It is loaded from a copy laid out as MLflow lays out a registered model (the model
  folder under `artifacts/hf_model`, ftpipe's registered code under `code/`, the manifest in its config).
  evaluate and the pyfunc share one routine (`textclf.window_probabilities`).
- `pipeline`: a plain `transformers.pipeline("text-classification")` on the same folder, called the way its
  documentation shows (`truncation=True`: it reads only the first `max_length` tokens of a text, one
  window, where the others read up to `tokenize.windows` windows).

Needs `models/model` and `data/processed/splits` (`make run`). Each path is timed after a warm-up batch.

    .venv/bin/python -m bench.inference [--limit 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.gpu_check import shape_of, train_flops_per_sample
from bench.workloads import matmul_peak

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "model"
SPLITS = ROOT / "data" / "processed" / "splits"


def _tokenize_config() -> dict[str, Any]:
    t = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["tokenize"]
    return {k: t[k] for k in ("max_length", "truncation", "head_fraction", "windows")}


def _served_copy(dest: Path) -> Path:
    """models/model laid out as a registered model (`artifacts/hf_model`, `code/`); the folder's path."""
    from stages.registry.integrity import registered_code
    from stages.serving.textclf import HF_ARTIFACT

    folder = dest / "artifacts" / HF_ARTIFACT
    shutil.copytree(MODEL, folder)
    (dest / "code").mkdir()
    for f in registered_code():
        shutil.copy(f, dest / "code" / f.name)
    return folder


def _pyfunc(folder: Path, config: dict[str, Any]) -> Any:
    from mlflow.pyfunc import PythonModelContext

    from stages.registry.integrity import served_manifest
    from stages.serving.textclf import HF_ARTIFACT, TextClassifier

    model = TextClassifier()
    config = {**config, "manifest": served_manifest(folder)}
    model.load_context(PythonModelContext(artifacts={HF_ARTIFACT: str(folder)}, model_config=config))
    return model


def forward_flops(model: Any, texts: list[str]) -> float:
    """Forward FLOPs of the served model `model` on `texts`: each window it reads, at its own length
    (bench.gpu_check's count, a third of a training step's)."""
    from stages.serving.textclf import encode

    cfg = model.config
    per_text = encode(
        model.tokenizer, texts, cfg["max_length"], cfg["truncation"], cfg["head_fraction"], cfg["windows"]
    )
    shape = shape_of(model.model)
    return sum(train_flops_per_sample(*shape, len(w["input_ids"])) / 3 for row in per_text for w in row)


def bench_inference(limit: int | None = None) -> dict[str, Any]:
    import pandas as pd
    from datasets import load_from_disk

    from stages.evaluate import predict_proba

    if not (MODEL / "config.json").is_file() or not (SPLITS / "dataset_dict.json").is_file():
        return {
            "error": "models/model or data/processed/splits is missing: run `make run` first",
            "pass": False,
        }
    test = load_from_disk(str(SPLITS))["test"]
    if limit:
        test = test.select(range(min(limit, len(test))))
    texts = list(test["text"])
    names = test.features["label"].names
    frame = pd.DataFrame({"text": texts})
    out: dict[str, Any] = {"texts": len(texts), "mean_chars": round(float(np.mean([len(t) for t in texts])))}

    predict_proba(MODEL, test.select(range(8)), 64)  # warm-up
    t0 = time.perf_counter()
    probs, _, _ = predict_proba(MODEL, test, 64)
    out["evaluate_texts_per_s"] = round(len(texts) / (time.perf_counter() - t0), 2)
    reference = [names[i] for i in probs.argmax(axis=1)]

    labels: dict[str, list[str]] = {}
    variants: tuple[tuple[str, dict[str, str]], ...] = (
        ("pyfunc", {}),
        ("pyfunc_int8", {"quantize": "int8"}),
        ("pyfunc_bf16", {"precision": "auto"}),
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = _served_copy(Path(tmp))
        for name, extra in variants:
            model = _pyfunc(folder, {**_tokenize_config(), **extra})
            if name == "pyfunc_bf16":
                out["bf16_autocast"] = bool(model.autocast_bf16)  # False: this CPU has no native bf16
            model.predict(None, frame.head(8))
            t0 = time.perf_counter()
            labels[name] = list(model.predict(None, frame)["label"])
            seconds = time.perf_counter() - t0
            out[f"{name}_texts_per_s"] = round(len(texts) / seconds, 2)
            if name == "pyfunc":
                out["pyfunc_achieved_gflops"] = round(forward_flops(model, texts) / seconds / 1e9, 1)
    out["fp32_peak_gflops"] = round(matmul_peak("fp32"), 1)
    out["pyfunc_peak_ratio"] = round(out["pyfunc_achieved_gflops"] / out["fp32_peak_gflops"], 3)
    fp32 = np.array(labels["pyfunc"])
    out["pyfunc_agreement_with_evaluate"] = round(float(np.mean(fp32 == reference)), 4)
    out["int8_agreement_with_fp32"] = round(float(np.mean(np.array(labels["pyfunc_int8"]) == fp32)), 4)
    out["bf16_agreement_with_fp32"] = round(float(np.mean(np.array(labels["pyfunc_bf16"]) == fp32)), 4)

    from transformers import pipeline

    from stages.serving.meanpool import register_auto_classes

    register_auto_classes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = pipeline("text-classification", model=str(MODEL), device=-1)
    clf(texts[:8], truncation=True)
    t0 = time.perf_counter()
    plain = [r["label"] for r in clf(texts, truncation=True)]
    out["pipeline_texts_per_s"] = round(len(texts) / (time.perf_counter() - t0), 2)
    out["pipeline_agreement_with_evaluate"] = round(float(np.mean(np.array(plain) == reference)), 4)

    base = out["pipeline_texts_per_s"]
    out["ratios_vs_pipeline"] = {
        k: round(out[f"{k}_texts_per_s"] / base, 2)
        for k in ("evaluate", "pyfunc", "pyfunc_int8", "pyfunc_bf16")
    }
    out["target"] = "int8 >= 2x the fp32 pyfunc's texts/s at >= 99.5% agreement"
    out["int8_speedup"] = round(out["pyfunc_int8_texts_per_s"] / out["pyfunc_texts_per_s"], 2)
    out["pass"] = out["int8_speedup"] >= 2 and out["int8_agreement_with_fp32"] >= 0.995
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N test texts")
    args = ap.parse_args(argv)
    print(json.dumps(bench_inference(args.limit), indent=2))


if __name__ == "__main__":
    main()
