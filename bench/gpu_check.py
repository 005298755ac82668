"""The measuring half of `bench/gpu_check.sh`: the shipped finetune on CUDA in bf16, with its figures.

    python -m bench.gpu_check --work bench/gpu-check --epochs 1                  # one GPU
    python -m torch.distributed.run --standalone --nproc_per_node 2 \\
        -m bench.gpu_check --work bench/gpu-check --epochs 1 --tag ddp2           # two GPUs (DDP, nccl)
    python -m torch.distributed.run --standalone --nproc_per_node 2 \\
        -m bench.gpu_check --work bench/gpu-check --epochs 1 --tag fsdp2 --strategy fsdp   # FSDP2

Runs the finetune stage's own `run_finetune` on `data/processed/splits` with params.yaml's `finetune`
section, except `precision: bf16` and `--epochs`; every output goes under `--work/<tag>`, never to
models/ or reports/. Prints and writes (`<tag>/gpu_check.json`): samples/s (the stage's own figure: time
inside optimizer steps), peak GPU memory of rank 0, and achieved TFLOP/s against the GPU's bf16 peak,
both the spec sheet's dense figure (when the GPU is in the table below) and a bf16 matmul measured here,
and the memory plan's per-GPU figure (stages/model/memplan.py, what `ftpipe plan` prints) next to the
measured peak (`torch.cuda.max_memory_allocated`; issue 23 asks for them within 20%).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.config.params import load_section
from stages.core.logs import setup_logging

# Dense bf16 tensor-core peaks from NVIDIA's data sheets (TFLOP/s, no sparsity); the first name that is a
# substring of torch's device name wins, so the more specific names come first.
BF16_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)


def spec_bf16_peak(device_name: str) -> float | None:
    """The data sheet's dense bf16 peak of a GPU named like `device_name`, or None if it is not listed."""
    return next((peak for name, peak in BF16_PEAK_TFLOPS if name in device_name), None)


def train_flops_per_sample(linear_params: int, layers: int, hidden: int, seq: float) -> float:
    """Training FLOPs of one sample of `seq` tokens: 3x the forward pass (backward = 2x forward), where the
    forward pass costs 2 FLOPs per linear weight per token plus, per layer, 4 * seq * hidden per token for
    the attention scores and their weighted sum. Embedding lookups are not counted."""
    forward_per_token = 2 * linear_params + 4 * layers * seq * hidden
    return 3 * seq * forward_per_token


def matmul_peak_tflops(n: int = 8192, iters: int = 30) -> float:
    """Measured bf16 matmul throughput of the current CUDA device (TFLOP/s)."""
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * iters / (time.perf_counter() - t0) / 1e12


def model_shape(model_dir: Path) -> tuple[int, int, int]:
    """Linear weights, layers and width of the saved model (loaded on the CPU, the head from ftpipe's code)."""
    from stages.serving.meanpool import load_classifier

    return shape_of(load_classifier(str(model_dir)))


def shape_of(model: Any) -> tuple[int, int, int]:
    """Linear weights, layers and width of a loaded model (what `train_flops_per_sample` counts)."""
    import torch

    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    cfg = getattr(model.config, "encoder", None) or model.config  # a mean-pool model: its body's config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 0)
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 0)
    return linear, int(layers or 0), int(hidden or 0)


def mean_window_tokens(splits: Path, split: str = "train") -> float:
    """Mean tokens of a window of `split`: for train, what one training sample holds before padding."""
    from datasets import load_from_disk

    windows = [w for row in load_from_disk(str(splits))[split]["windows"] for w in row]
    return sum(len(w) for w in windows) / max(1, len(windows))


def planned_bytes(p: FinetuneParams, base: BaseModelRef, params_path: str, labels: Path) -> int:
    """What the memory plan says one GPU of this run needs (weights, gradients, optimizer, activations)."""
    from stages.config.tokenize import TokenizeParams
    from stages.model.memplan import plan_run

    max_length = load_section("tokenize", TokenizeParams, params_path).max_length
    no_limit = (2**62, "gpu_check")  # the plan's figure is wanted, not its verdict
    return plan_run(
        p, base.model, base.trust_remote_code, max_length, labels, "cuda", "bf16", no_limit
    ).per_process


def run(work: Path, epochs: int, tag: str, params_path: str, strategy: str = "ddp") -> dict[str, Any] | None:
    """Train, then measure; the figures on rank 0, None on the other ranks."""
    import torch

    from stages.model.recipe import Paths, run_finetune

    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA device; run bench/gpu_check.sh, which sets one up.")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local_rank)
    log = setup_logging("finetune") if local_rank == 0 else logging.getLogger("ftpipe.finetune")
    shipped = load_section("finetune", FinetuneParams, params_path)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    # num_processes = the torchrun world, so that the plan counts the shards and fsdp validates; the stage
    # does not relaunch itself under torchrun (WORLD_SIZE is set)
    overrides = {"precision": "bf16", "epochs": epochs, "num_processes": world, "strategy": strategy}
    p = FinetuneParams(**{**shipped.model_dump(), **overrides})
    base = load_section("tokenize", BaseModelRef, params_path)
    out = work / tag
    splits = Path("data/processed/splits")
    paths = Paths(
        splits,
        Path("data/processed/labels.json"),
        out / "model",
        out / "checkpoints",
        out / "finetune.json",
        out / "finetune_history.json",
        out / "finetune_curves.png",
    )
    torch.cuda.reset_peak_memory_stats()
    report = run_finetune(p, base, paths, log)
    if report is None:
        return None
    peak = torch.cuda.max_memory_allocated()
    planned = planned_bytes(p, base, params_path, paths.labels)
    name = torch.cuda.get_device_name()
    seq = mean_window_tokens(splits)
    linear, layers, hidden = model_shape(paths.out)
    flops = train_flops_per_sample(linear, layers, hidden, seq)
    samples_per_s = float(report["train_samples_per_s"] or 0.0)
    achieved = samples_per_s * flops / 1e12  # all GPUs together
    measured = matmul_peak_tflops()
    spec = spec_bf16_peak(name)
    figures = {
        "gpu": name,
        "gpus": world,
        "strategy": strategy,
        "precision": report["precision"],
        "epochs": epochs,
        "train_rows": report["train_rows"],
        "samples_per_s": samples_per_s,
        "peak_gpu_memory_gib": round(peak / 2**30, 2),
        "planned_gpu_memory_gib": round(planned / 2**30, 2),
        "plan_over_measured": round(planned / peak, 3),
        "mean_tokens_per_sample": round(seq, 1),
        "train_gflop_per_sample": round(flops / 1e9, 4),
        "achieved_tflops": round(achieved, 2),
        "achieved_tflops_per_gpu": round(achieved / world, 2),
        "matmul_bf16_peak_tflops_measured": round(measured, 1),
        "share_of_measured_peak": round(achieved / world / measured, 4),
        "bf16_peak_tflops_spec": spec,
        "share_of_spec_peak": round(achieved / world / spec, 4) if spec else None,
        "best_validation_macro_f1": report["best_validation"]["macro_f1"],
        "wall_time_s": report["wall_time_s"],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    (out / "gpu_check.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="bench/gpu-check", help="folder for every output (git-ignored)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs to train (default 1)")
    ap.add_argument("--tag", default="gpu1", help="sub-folder of this run")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--strategy", choices=("ddp", "fsdp"), default="ddp", help="fsdp needs >= 2 processes")
    args = ap.parse_args(argv)
    figures = run(Path(args.work), args.epochs, args.tag, args.params, args.strategy)
    if figures is not None:
        width = max(len(k) for k in figures)
        print(f"\ngpu_check ({args.tag}):")
        for k, v in figures.items():
            print(f"  {k.ljust(width)}  {v}")


if __name__ == "__main__":
    main()
