"""bench/gpu_check.sh: says CPU-only and exits 0 without a GPU; its measuring half runs end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bench.gpu_check import shape_of, spec_bf16_peak, train_flops_per_sample
from tests.conftest import REPO, build_splits

SCRIPT = REPO / "bench" / "gpu_check.sh"


def run_script(path_dir: Path) -> subprocess.CompletedProcess[str]:
    """The script with PATH = `path_dir` (what it finds there is all it can run) plus a few tools."""
    for tool in ("dirname", "grep", "sed"):
        (path_dir / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": str(path_dir)}
    return subprocess.run(
        [shutil.which("bash"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("nvidia_smi", [None, "echo 'NVIDIA-SMI has failed: no driver' >&2; exit 9"])
def test_without_a_gpu_it_says_so_and_exits_0(tmp_path: Path, nvidia_smi: str | None) -> None:
    if nvidia_smi:  # a driver-less machine with the tool installed
        (tmp_path / "nvidia-smi").write_text(f"#!/bin/sh\n{nvidia_smi}\n")
        (tmp_path / "nvidia-smi").chmod(0o755)
    before = sorted(p.name for p in REPO.iterdir())
    proc = run_script(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("gpu_check: CPU-only: no CUDA GPU on this machine")
    assert sorted(p.name for p in REPO.iterdir()) == before  # no .venv-gpu, no bench/gpu-check


def test_peaks_and_flops() -> None:
    assert spec_bf16_peak("NVIDIA H100 PCIe") == 756.0 and spec_bf16_peak("NVIDIA H100 80GB HBM3") == 989.0
    assert spec_bf16_peak("NVIDIA H200") == 989.0 and spec_bf16_peak("NVIDIA L40S") == 362.0
    assert spec_bf16_peak("Tesla T4") is None
    # MiniLM-L6 (6 layers, 384 wide, 1536 feed-forward) at 128 tokens: about 8.6 GFLOP per training sample
    linear = 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    assert train_flops_per_sample(linear, 6, 384, 128) == 3 * 128 * (2 * linear + 4 * 6 * 128 * 384)
    assert train_flops_per_sample(linear, 6, 384, 128) / 1e9 == pytest.approx(8.6, abs=0.05)


def test_shape_of_reads_the_body_of_a_mean_pool_model(tiny_bert: Path) -> None:
    """The mean-pool classifier keeps the body's config under `config.encoder`: its layers and width were
    read as 0, so attention FLOPs went uncounted for every model finetune saves."""
    import torch

    from stages.serving.meanpool import MeanPoolForSequenceClassification
    from tests.conftest import TINY_BERT_SHAPE

    model = MeanPoolForSequenceClassification.from_body(str(tiny_bert), num_labels=3)
    linear, layers, hidden = shape_of(model)
    assert (layers, hidden) == (TINY_BERT_SHAPE["num_hidden_layers"], TINY_BERT_SHAPE["hidden_size"])
    assert linear == sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def test_the_measuring_half_runs_end_to_end(
    tmp_path: Path, tiny_bert: Path, corpus: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m bench.gpu_check` on a tiny model, the CUDA queries stubbed (no GPU here): it trains
    through the finetune stage in bf16 and writes every figure."""
    import torch

    import bench.gpu_check as gc
    import stages.model.recipe as recipe

    build_splits(tiny_bert, corpus, tmp_path / "data" / "processed")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["tokenize"]["model"] = str(tiny_bert)
    params["finetune"].update(batch_size=8, eval_batch_size=16)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)

    real = recipe.run_finetune

    def on_cpu(*args, **kw):  # the stage itself must see the CPU it runs on
        with monkeypatch.context() as m:
            m.setattr(torch.cuda, "is_available", lambda: False)
            return real(*args, **kw)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name, value in {
        "set_device": lambda i: None,
        "reset_peak_memory_stats": lambda: None,
        "max_memory_allocated": lambda: 3 * 2**30,
        "get_device_name": lambda: "NVIDIA H100 80GB HBM3",
    }.items():
        monkeypatch.setattr(torch.cuda, name, value)
    monkeypatch.setattr(recipe, "run_finetune", on_cpu)
    monkeypatch.setattr(gc, "matmul_peak_tflops", lambda: 700.0)

    gc.main(["--work", "out", "--epochs", "1"])
    figures = json.loads((tmp_path / "out" / "gpu1" / "gpu_check.json").read_text())
    assert figures["precision"] == "bf16" and figures["epochs"] == 1 and figures["gpus"] == 1
    assert figures["samples_per_s"] > 0 and figures["train_gflop_per_sample"] > 0
    assert figures["peak_gpu_memory_gib"] == 3.0 and figures["bf16_peak_tflops_spec"] == 989.0
    assert figures["share_of_spec_peak"] == round(figures["achieved_tflops"] / 989.0, 4)
    assert (tmp_path / "out" / "gpu1" / "model" / "model.safetensors").is_file()
    assert not (tmp_path / "models").exists() and not (tmp_path / "reports").exists()


def test_on_the_cpu_the_measuring_half_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import bench.gpu_check as gc

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="torch sees no CUDA device"):
        gc.main(["--work", "unused"])
