"""Where and how this training process runs: device, precision (`auto` resolved) and the process layout.

    rt = resolve_runtime(params)   # Runtime(device="cpu", precision="bf16", world_size=1, rank=0, ...)

`precision: auto` picks bf16 only where the hardware computes it natively (a CUDA device with bf16, a
CPU with AVX512-BF16 or AMX); emulated bf16 is slower than fp32. The process layout comes from the
environment `torchrun` sets (WORLD_SIZE, RANK); the finetune launcher marks its workers with CHILD_ENV.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from stages.config.finetune import FinetuneParams
from stages.model.trainer import FinetuneError

CHILD_ENV = "FTPIPE_FINETUNE_CHILD"  # set by the launcher on the torchrun workers it starts
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class Runtime:
    """How this process trains: the report and the saved params record it."""

    device: str  # cpu | cuda
    precision: str  # fp32 | bf16 | fp16
    world_size: int
    rank: int
    backend: str | None  # gloo | nccl when world_size > 1
    reason: str = ""  # why this precision (the report and the model card say it)


def resolve_runtime(p: FinetuneParams) -> Runtime:
    """Device, precision and process layout for this process (CUDA when present, else CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision: str = p.precision
    reason = "set by finetune.precision"
    if precision == "auto":
        precision, reason = auto_precision(device)
    if precision == "fp16" and device != "cuda":
        raise FinetuneError(
            "finetune.precision = fp16 needs a CUDA device and none is visible; use `auto`, `fp32` or `bf16` "
            "(bf16 autocast works on CPUs that support it)."
        )
    if device == "cuda" and p.num_processes > torch.cuda.device_count():
        raise FinetuneError(
            f"finetune.num_processes = {p.num_processes} but only {torch.cuda.device_count()} CUDA device(s) "
            "are visible; lower it or expose more GPUs (CUDA_VISIBLE_DEVICES)."
        )
    backend = None if world == 1 else ("nccl" if device == "cuda" else "gloo")
    return Runtime(
        device=device, precision=precision, world_size=world, rank=rank, backend=backend, reason=reason
    )


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The CPU feature flags the kernel reports (Linux), or None where they cannot be read."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return None


def auto_precision(device: str, flags: set[str] | None = None) -> tuple[str, str]:
    """`precision: auto`: bf16 where the hardware computes it natively, else fp32; and why.

    A CUDA device that supports bf16 gets bf16. A CPU gets bf16 autocast only with a native bf16
    instruction set (AVX512-BF16 or AMX); without one, bf16 would be emulated and slower than fp32.
    """
    if device == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: the CUDA device supports bf16"
        return "fp32", "auto: the CUDA device has no bf16"
    flags = cpu_flags() if flags is None else flags
    if flags is None:
        return "fp32", "auto: the CPU's flags cannot be read here, so native bf16 is not assumed"
    native = [f for f in BF16_CPU_FLAGS if f in flags]
    if native:
        return "bf16", f"auto: the CPU has native bf16 ({', '.join(native)})"
    return "fp32", "auto: the CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag)"


def single_process(rt: Runtime) -> bool:
    """One process not started by the launcher: it owns the checkpoint folder (prepares and clears it)."""
    return rt.world_size == 1 and os.environ.get(CHILD_ENV) != "1"
