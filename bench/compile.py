"""compile: does `torch.compile` pay on this machine, compile time included? Training and inference.

Both halves use the packaged MiniLM with a 5-class head, eager against `torch.compile(model)` (inductor,
default mode), in this process's threads:

- `train`: full-parameter AdamW steps at batch 16 x 128 tokens (one fixed shape, compile's best case:
  finetune's batches are padded to their longest window, so real runs see several shapes and recompile).
  The first compiled step carries the compile; steady-state samples/s after it.
- `inference`: forward passes under `torch.inference_mode` over `--windows` windows (default 1,404, the
  windows of BBC's 338 test articles) in batches of 32 whose padded length cycles through 128, 112, 96
  and 64 tokens, as evaluate's longest-first batches do; wall seconds for the whole job, compile included.

`break_even_*` is how much work the compiled model needs before its compile time is paid back (None: it
never pays, its steady state is slower). Inductor's on-disk cache would hide the compile time of a second
run, so `bench.run compile` runs this in a fresh cache directory.

    .venv/bin/python -m bench.compile [--steps 12] [--windows 1404]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

from bench.workloads import packaged_classifier, train_step

BATCH, SEQ = 16, 128
INFER_BATCH = 32
INFER_LENGTHS = (128, 112, 96, 64)


def time_training(compiled: bool, steps: int) -> tuple[float, float]:
    """(seconds of the first step, steady-state samples/s over `steps` steps after a second warm-up step)."""
    _, step = train_step("fp32", BATCH, SEQ, prepare=torch.compile if compiled else None)
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return first, steps * BATCH / (time.perf_counter() - t0)


def time_inference(compiled: bool, windows: int) -> tuple[float, float]:
    """(wall seconds for `windows` windows, compile included; steady windows/s over a second pass)."""
    model = packaged_classifier().eval()
    run = torch.compile(model) if compiled else model
    batches = []
    for i, start in enumerate(range(0, windows, INFER_BATCH)):
        n, length = min(INFER_BATCH, windows - start), INFER_LENGTHS[i % len(INFER_LENGTHS)]
        ids = torch.randint(1000, 20000, (n, length))
        batches.append((ids, torch.ones_like(ids)))

    def job() -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            for ids, mask in batches:
                run(input_ids=ids, attention_mask=mask)
        return time.perf_counter() - t0

    first = job()
    return first, windows / job()


def bench_compile(steps: int = 12, windows: int = 1404) -> dict[str, Any]:
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "batch": BATCH, "seq": SEQ}
    for name, compiled in (("eager", False), ("compiled", True)):
        first, rate = time_training(compiled, steps)
        out[f"train_{name}_first_step_s"] = round(first, 2)
        out[f"train_{name}_samples_per_s"] = round(rate, 2)
    for name, compiled in (("eager", False), ("compiled", True)):
        first, rate = time_inference(compiled, windows)
        out[f"inference_{name}_job_s"] = round(first, 2)
        out[f"inference_{name}_windows_per_s"] = round(rate, 2)
    out["windows"] = windows
    out["train_speedup"] = round(out["train_compiled_samples_per_s"] / out["train_eager_samples_per_s"], 3)
    out["inference_speedup"] = round(
        out["inference_compiled_windows_per_s"] / out["inference_eager_windows_per_s"], 3
    )
    out["break_even_train_samples"] = _break_even(
        out["train_compiled_first_step_s"] - out["train_eager_first_step_s"],
        out["train_eager_samples_per_s"],
        out["train_compiled_samples_per_s"],
    )
    out["break_even_inference_windows"] = _break_even(
        out["inference_compiled_job_s"] - windows / out["inference_compiled_windows_per_s"],
        out["inference_eager_windows_per_s"],
        out["inference_compiled_windows_per_s"],
    )
    out["pass"] = True  # a decision aid, no target: finetune and inference stay eager unless this pays
    return out


def _break_even(extra_s: float, eager_rate: float, compiled_rate: float) -> int | None:
    """Items after which `extra_s` of compile time is paid back by the faster rate; None if it never is."""
    saving = 1 / eager_rate - 1 / compiled_rate  # seconds saved per item
    return None if saving <= 0 else round(max(0.0, extra_s) / saving)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--steps", type=int, default=12, help="steady-state training steps timed")
    ap.add_argument("--windows", type=int, default=1404, help="windows in the inference job")
    args = ap.parse_args(argv)
    print(json.dumps(bench_compile(args.steps, args.windows)))


if __name__ == "__main__":
    main()
