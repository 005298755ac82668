#!/usr/bin/env bash
# The default finetune on a CUDA GPU in bf16: samples/s, peak GPU memory, achieved TFLOP/s against the
# GPU's bf16 peak, the memory plan next to the measured peak, and, when two GPUs are present, the same
# under torchrun with ddp and with fsdp (FSDP2), and fsdp's samples/s against ddp's (bench/README.md).
#
#     bash bench/gpu_check.sh            # from a checkout of the repository, on the GPU machine
#
# On a machine without a CUDA GPU it says so and exits 0. Otherwise it
#   1. uses .venv when its torch sees CUDA, else builds .venv-gpu from requirements.lock (and, when that
#      torch is a CPU build, reinstalls the same torch version from the package index: a CUDA build);
#   2. makes the data with `dvc repro validate` (check, ingest .. validate; skipped when up to date);
#   3. trains with params.yaml's finetune section in bf16 for FTPIPE_GPU_EPOCHS epochs (default 1) on one
#      GPU, then on two with torchrun (ddp, then fsdp) when there are two, every output under bench/gpu-check/ (git-ignored;
#      models/ and reports/ are not touched), and prints the figures (also in bench/gpu-check/*/gpu_check.json).
# Settings (environment): FTPIPE_GPU_EPOCHS, FTPIPE_GPU_WORK (output folder), PYTHON (the interpreter that
# makes .venv-gpu, default python3), FTPIPE_TORCH_INDEX (an index URL for the CUDA torch, e.g.
# https://download.pytorch.org/whl/cu128, when the default index gives a CPU build).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EPOCHS="${FTPIPE_GPU_EPOCHS:-1}"
WORK="${FTPIPE_GPU_WORK:-$ROOT/bench/gpu-check}"

say() { echo "gpu_check: $*"; }

# ---- 0. a CUDA GPU, or nothing to do
GPUS=0
if command -v nvidia-smi >/dev/null 2>&1; then
    GPUS="$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU ' || true)"
fi
case "$GPUS" in ''|*[!0-9]*) GPUS=0 ;; esac
if [ "$GPUS" -eq 0 ]; then
    say "CPU-only: no CUDA GPU on this machine (nvidia-smi is missing or lists no GPU); nothing to measure."
    say "run this script unchanged on a machine with an NVIDIA GPU and its driver."
    exit 0
fi
say "$GPUS GPU(s):"
nvidia-smi -L | sed 's/^/    /'

cuda_ok() { "$1/bin/python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; }

# ---- 1. a Python environment whose torch sees the GPU
if [ -x .venv/bin/python ] && cuda_ok .venv; then
    VENV="$ROOT/.venv"
else
    VENV="$ROOT/.venv-gpu"
    STAMP="$VENV/.installed-$(cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)"
    if [ ! -f "$STAMP" ]; then
        say "setting up $VENV from requirements.lock (a few minutes)"
        [ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --upgrade pip
        "$VENV/bin/pip" install --quiet -r requirements.lock
        "$VENV/bin/pip" install --quiet --no-deps -e .
        touch "$STAMP"
    fi
    if ! cuda_ok "$VENV"; then
        TORCH="$(grep -E '^torch==' requirements.lock | head -1)"
        say "the installed torch is a CPU build; installing $TORCH with CUDA${FTPIPE_TORCH_INDEX:+ from $FTPIPE_TORCH_INDEX}"
        "$VENV/bin/pip" uninstall --quiet -y torch
        grep -vE '^torch==' requirements.lock > "$VENV/constraints.txt"  # keep every other pin
        "$VENV/bin/pip" install --quiet -c "$VENV/constraints.txt" \
            ${FTPIPE_TORCH_INDEX:+--index-url "$FTPIPE_TORCH_INDEX" --extra-index-url https://pypi.org/simple} "$TORCH"
    fi
    if ! cuda_ok "$VENV"; then
        say "torch in $VENV still sees no CUDA device although nvidia-smi lists $GPUS GPU(s):"
        "$VENV/bin/python" -c 'import torch; print("    torch", torch.__version__, "cuda", torch.version.cuda)' || true
        say "set FTPIPE_TORCH_INDEX to the PyTorch index of your CUDA version (https://pytorch.org), e.g."
        say "    FTPIPE_TORCH_INDEX=https://download.pytorch.org/whl/cu128 bash bench/gpu_check.sh"
        exit 1
    fi
fi
export PATH="$VENV/bin:$PATH"  # dvc.yaml's stage commands call `python`
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false DO_NOT_TRACK=1
python -c 'import torch; print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}")'

# ---- 2. the data, as the pipeline makes it
say "dvc repro validate (the data stages; skipped when up to date)"
dvc repro validate

# ---- 3. the measurements
mkdir -p "$WORK"
rm -rf "$WORK/gpu1"
python -m bench.gpu_check --work "$WORK" --epochs "$EPOCHS" --tag gpu1
if [ "$GPUS" -ge 2 ]; then
    for strategy in ddp fsdp; do
        rm -rf "${WORK:?}/${strategy}2"
        python -m torch.distributed.run --standalone --nproc_per_node 2 \
            -m bench.gpu_check --work "$WORK" --epochs "$EPOCHS" --tag "${strategy}2" --strategy "$strategy"
    done
else
    say "one GPU: the 2-GPU torchrun runs (ddp, fsdp) are skipped"
fi
python - "$WORK" <<'EOF'
import json, sys
from pathlib import Path
runs = {t: json.loads(f.read_text()) for t in ("gpu1", "ddp2", "fsdp2") if (f := Path(sys.argv[1]) / t / "gpu_check.json").is_file()}
print()
for t, f in runs.items():
    print(f"gpu_check: {t}: {f['samples_per_s']:.1f} samples/s, memory plan {f['planned_gpu_memory_gib']} GiB vs measured"
          f" peak {f['peak_gpu_memory_gib']} GiB ({f['plan_over_measured']:.2f}x)")
if "ddp2" in runs:
    print(f"gpu_check: 2 GPUs (ddp) train at {runs['ddp2']['samples_per_s'] / runs['gpu1']['samples_per_s']:.2f}x the samples/s of one")
if "fsdp2" in runs:
    print(f"gpu_check: fsdp on 2 GPUs trains at {runs['fsdp2']['samples_per_s'] / runs['ddp2']['samples_per_s']:.2f}x the samples/s of ddp")
EOF
say "figures in $WORK/*/gpu_check.json"
