"""The runtime: fp16 needs CUDA, and `precision: auto` picks bf16 only where the hardware has it natively."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.config.finetune import FinetuneParams
from stages.model.runtime import auto_precision, cpu_flags, resolve_runtime
from stages.model.trainer import FinetuneError


def test_fp16_on_the_cpu_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(FinetuneError, match="fp16 needs a CUDA device"):
        resolve_runtime(FinetuneParams(precision="fp16"))
    rt = resolve_runtime(FinetuneParams())
    assert (rt.device, rt.precision, rt.world_size) == ("cpu", auto_precision("cpu")[0], 1)
    assert rt.reason.startswith("auto: the CPU")
    assert resolve_runtime(FinetuneParams(precision="fp32")).reason == "set by finetune.precision"


def test_auto_precision_picks_bf16_only_on_a_cpu_with_native_bf16(tmp_path: Path) -> None:
    assert auto_precision("cpu", {"avx2", "fma", "avx512f"}) == (
        "fp32",
        "auto: the CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag)",
    )
    assert auto_precision("cpu", {"avx512f", "avx512_bf16"})[0] == "bf16"
    assert auto_precision("cpu", {"amx_tile", "amx_bf16"}) == (
        "bf16",
        "auto: the CPU has native bf16 (amx_bf16)",
    )
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512_bf16\nbogomips\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") is None
