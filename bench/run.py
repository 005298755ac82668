"""Benchmarks for ftpipe's speed and memory targets (see bench/README.md).

.venv/bin/python -m bench.run [data] [train_step] [noop_repro] [long_text] [efficiency] [vs_trainer] [inference]
    [compile] [dropout]

torch, transformers and the stage modules are imported inside the benchmarks that use them, so `--help`
and the benchmarks that need none of them do not wait for them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import inference, vs_trainer
from bench.gpu_check import mean_window_tokens, model_shape, shape_of, train_flops_per_sample
from bench.workloads import matmul_peak, train_step

ROOT = Path(__file__).resolve().parents[1]


def bench_data(params: Path = ROOT / "params.yaml") -> dict[str, Any]:
    """The four data-stage cores with the shipped params.yaml (each section loaded as its stage loads it)."""
    from stages.config.clean import CleanParams
    from stages.config.ingest import IngestParams
    from stages.config.label import LabelParams
    from stages.config.params import load_section
    from stages.config.tokenize import TokenizeParams
    from stages.data.cleaning import clean_table
    from stages.data.labels import canonicalise
    from stages.data.raw import ingest
    from stages.data.split import split_groups
    from stages.tokenize import load_tokenizer, tokenize_table

    ip = load_section("ingest", IngestParams, params)
    cp = load_section("clean", CleanParams, params)
    tp = load_section("tokenize", TokenizeParams, params)
    lp = load_section("label", LabelParams, params)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    raw, _, _ = ingest(ip)
    t1 = time.perf_counter()
    clean, _, _ = clean_table(raw, cp)
    t2 = time.perf_counter()
    ds, _ = tokenize_table(clean, tp, load_tokenizer(tp))
    t3 = time.perf_counter()
    kept, _, _ = canonicalise(ds.select_columns(["id", "text", "label", "group"]).to_pandas(), lp)
    split_groups(kept, lp)
    t4 = time.perf_counter()
    for name, a, b, n in [
        ("ingest", t0, t1, len(raw)),
        ("clean", t1, t2, len(raw)),
        ("tokenize", t2, t3, len(clean)),
        ("label", t3, t4, len(clean)),
    ]:
        out[f"{name}_s"] = round(b - a, 3)
        out[f"{name}_rows_per_s"] = round(n / max(b - a, 1e-9), 1)
    out["total_s"] = round(t4 - t0, 3)
    out["target_total_s"] = 30
    out["pass"] = out["total_s"] < 30
    return out


def precisions() -> tuple[list[str], str]:
    """fp32, plus bf16 where the CPU computes it natively (emulated bf16 is far slower, not a figure)."""
    from stages.model.runtime import auto_precision

    chosen, reason = auto_precision("cpu")
    return (["fp32", "bf16"] if chosen == "bf16" else ["fp32"]), reason


def time_train_steps(precision: str, steps: int, batch: int, seq: int) -> tuple[Any, float]:
    """The model and the seconds `steps` training steps (`train_step`) took after one warm-up step."""
    model, step = train_step(precision, batch, seq)
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return model, time.perf_counter() - t0


def bench_train_step(steps: int = 6, batch: int = 16, seq: int = 128) -> dict[str, Any]:
    """Samples/s of full-parameter AdamW steps on the packaged MiniLM with a 5-class head."""
    import torch

    kinds, why = precisions()
    out: dict[str, Any] = {"batch": batch, "seq": seq, "threads": torch.get_num_threads(), "bf16": why}
    for precision in kinds:
        _, dt = time_train_steps(precision, steps, batch, seq)
        out[f"{precision}_samples_per_s"] = round(steps * batch / dt, 2)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["pass"] = out["fp32_samples_per_s"] >= 10 and out["peak_rss_mib"] < 4096
    return out


def bench_noop_repro() -> dict[str, Any]:
    """Wall time of `dvc repro evaluate` when nothing changed (best of three).

    `register` is left out: it is `always_changed` (the registry is external state) and checks MLflow.
    """
    dvc = str(Path(sys.executable).parent / "dvc")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        proc = subprocess.run([dvc, "repro", "evaluate"], cwd=ROOT, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
    up_to_date = "up to date" in proc.stdout
    return {"best_s": round(min(times), 3), "up_to_date": up_to_date, "pass": up_to_date and min(times) < 3}


LONG_TEXT_CHILD = """
import json, resource, sys, time
from stages.config.tokenize import TokenizeParams
from stages.serving.textclf import encode
from stages.tokenize import encode_batch, load_tokenizer

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

p = TokenizeParams(max_length=128, windows=8, truncation="head+tail")
tok = load_tokenizer(p)
encode(tok, ["warm up"], 128, "head+tail", 0.25, 8)
text = ("Shares rose after the bank's profit beat forecasts, traders said. " * 160_000)[: int(sys.argv[1])]
out, base = {"chars": len(text)}, rss_mib()
t0 = time.perf_counter()
(row,) = encode(tok, [text], 128, "head+tail", 0.25, 8)
out.update(served_s=round(time.perf_counter() - t0, 3), served_extra_mib=round(rss_mib() - base, 1))
t0 = time.perf_counter()
encode_batch(tok, [text], p)
out.update(stage_s=round(time.perf_counter() - t0, 3), stage_extra_mib=round(rss_mib() - base, 1))
out["windows"] = len(row)
print(json.dumps(out))
"""


def bench_long_text(chars: int = 10_000_000) -> dict[str, Any]:
    """One 10 MB text under `head+tail` at the shipped windows (8 x 128): the served model's encoding
    (bounded by the budget), then the tokenize stage's (which also counts the whole text's tokens).

    Run in a fresh process, so its peak memory is this text's alone.
    """
    proc = subprocess.run(
        [sys.executable, "-c", LONG_TEXT_CHILD, str(chars)], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "pass": False}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["target"] = "served < 5 s; served and stage < 1024 MiB extra"
    out["pass"] = out["served_s"] < 5 and max(out["served_extra_mib"], out["stage_extra_mib"]) < 1024
    return out


def bench_efficiency(steps: int = 6, batch: int = 16, seq: int = 128) -> dict[str, Any]:
    """Achieved training FLOP/s of the packaged MiniLM (fp32 and bf16 autocast) against this machine's
    measured matmul peak in the same precision."""
    import torch

    kinds, why = precisions()
    out: dict[str, Any] = {"batch": batch, "seq": seq, "threads": torch.get_num_threads(), "bf16": why}
    for precision in kinds:
        peak = matmul_peak(precision)
        model, dt = time_train_steps(precision, steps, batch, seq)
        achieved = train_flops_per_sample(*shape_of(model), seq) * steps * batch / dt / 1e9
        out[f"{precision}_peak_gflops"] = round(peak, 1)
        out[f"{precision}_achieved_gflops"] = round(achieved, 1)
        out[f"{precision}_ratio"] = round(achieved / peak, 3)
    floor = default_finetune_floor()
    if floor is not None:
        out["default_finetune_tflop"] = round(floor / 1e12, 1)
        out["default_finetune_floor_s"] = round(floor / (out["fp32_peak_gflops"] * 1e9))
    out["pass"] = True  # a measurement, no target: bench/README.md states the peak and the ratio
    return out


def finetune_flops(
    shape: tuple[int, int, int],
    train_rows: int,
    epochs: int,
    train_tokens: float,
    validation_windows: int,
    validation_tokens: float,
) -> float:
    """FLOPs of a finetune run: each epoch one training sample per train row and a forward pass over every
    validation window, counted at the windows' real mean length (no padding): a lower bound."""
    per_epoch = train_rows * train_flops_per_sample(*shape, train_tokens)
    per_epoch += validation_windows * train_flops_per_sample(*shape, validation_tokens) / 3
    return epochs * per_epoch


def default_finetune_floor() -> float | None:
    """FLOPs of the last default finetune run (reports/finetune.json on data/processed/splits), or None
    before `make run`. At the machine's matmul peak they take `default_finetune_floor_s`: no fp32 run of
    that recipe here can be faster."""
    report, splits = ROOT / "reports" / "finetune.json", ROOT / "data" / "processed" / "splits"
    model = ROOT / "models" / "model"
    if not all(p.is_file() for p in (report, splits / "dataset_dict.json", model / "config.json")):
        return None
    r = json.loads(report.read_text(encoding="utf-8"))
    return finetune_flops(
        model_shape(model),
        int(r["train_rows"]),
        int(r["epochs_run"]),
        mean_window_tokens(splits, "train"),
        int(r["validation_windows"]),
        mean_window_tokens(splits, "validation"),
    )


def bench_vs_trainer() -> dict[str, Any]:
    """The finetune stage against a plain Trainer script, 1 epoch each (bench/vs_trainer.py)."""
    return vs_trainer.bench_vs_trainer(epochs=1)


def bench_inference() -> dict[str, Any]:
    """Texts/s of evaluate's path, the served model (fp32, int8, bf16) and a plain pipeline (bench/inference.py)."""
    return inference.bench_inference(limit=200)


def bench_compile() -> dict[str, Any]:
    """torch.compile against eager, training and inference, compile time included (bench/compile.py), in a
    fresh inductor cache so the compile is paid as a first run pays it."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        proc = subprocess.run(
            [sys.executable, "-m", "bench.compile"], cwd=ROOT, env=env, capture_output=True, text=True
        )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:], "pass": False}
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def bench_dropout() -> dict[str, Any]:
    """A training step with torch's dropout masks, cheaper masks, and none (bench/dropout.py)."""
    from bench import dropout  # imports torch: not for `--help`

    return dropout.bench_dropout()


BENCHES: dict[str, Callable[[], dict[str, Any]]] = {
    "data": bench_data,
    "train_step": bench_train_step,
    "noop_repro": bench_noop_repro,
    "long_text": bench_long_text,
    "efficiency": bench_efficiency,
    "vs_trainer": bench_vs_trainer,
    "inference": bench_inference,
    "compile": bench_compile,
    "dropout": bench_dropout,
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=(__doc__ or "").splitlines()[0],
        epilog="Results go to bench/results.json.",
    )
    ap.add_argument(
        "names", nargs="*", metavar="BENCH", help=f"benchmarks to run (default: all): {', '.join(BENCHES)}"
    )
    names = ap.parse_args(argv).names or list(BENCHES)
    if unknown := [n for n in names if n not in BENCHES]:
        ap.error(f"no benchmark named {', '.join(unknown)}; pick from {', '.join(BENCHES)}")
    results = {}
    for name in names:
        results[name] = BENCHES[name]()
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    path = ROOT / "bench" / "results.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
