"""ftpipe's training core on a bare CUDA machine, in one short call: throughput, MFU, memory, accuracy.

    make device-carry                                      # here: wheels, BBC splits, MiniLM in bf16; dry run
    python3 -m bench.gpu_device_check --dry-run            # what one device call carries, and its total
    PYTHONUNBUFFERED=1 python3 -m bench.gpu_device_check   # there, in the repository root; figures to $OUT
    python3 -m bench.gpu_device_check --device cpu --steps 4 --model DIR --data DIR   # the CPU path (tests)

The lent GPU machine reaches no package registry. Its own python3 has torch, transformers, accelerate,
pyarrow, pandas, scikit-learn, pyyaml and matplotlib, but no datasets or pydantic, and its transformers
(5.17) is older than the core needs (5.23 or later: it lacks `TrainingArguments(activation_checkpointing=
...)` and `SubConfigSpec`, which the mean-pool head's config uses). `make device-wheels` downloads
requirements.lock's pins of those into .device-carry/wheels/. This module imports only the standard
library and `packaging` (which transformers needs, so it is there): it installs the carried wheels whose
distribution the machine lacks, or has at a version the carried packages do not accept, into a fresh
folder put first on sys.path, and only then imports the core and measures (bench/gpu_device_runs.py).
Nothing is fetched: HF_HUB_OFFLINE=1. docs/training.md, "The training core on a bare GPU machine",
says how to run it.
"""

from __future__ import annotations

import argparse
import email.parser
import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

CARRY_DIR = Path(".device-carry")  # git-ignored; the device tool's `carry` names it
WHEEL_DIR = CARRY_DIR / "wheels"
MODEL_ARCHIVE = CARRY_DIR / "minilm-bf16.tar.xz"  # the packaged MiniLM, weights rounded to bf16
DATA_ARCHIVE = CARRY_DIR / "bbc.tar.xz"  # BBC train and validation splits, as the label stage writes them
CARRY_LIMIT = 64 * 2**20  # what one device call may carry: the working tree plus the carried paths
# What the training core imports that the machine may lack: each is installed from the carry unless the
# machine has the lock's exact version; their own requirements then only need to be met.
ROOTS = ("transformers", "datasets", "pydantic")
# The wheels `make device-wheels` carries (requirements.lock's pins): the roots, and what they require
# that the machine lacks (dill, multiprocess, pydantic's three) or may have at a version they refuse.
WHEELS = (
    *ROOTS,
    "dill",
    "multiprocess",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "typing-extensions",
    "fsspec",
)
# manylinux x86-64 for CPython 3.12, the GPU machine's interpreter (pydantic-core is compiled)
WHEEL_PLATFORM = (
    "--only-binary=:all:",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
    *("--platform", "manylinux_2_28_x86_64"),
    *("--platform", "manylinux_2_17_x86_64"),
    *("--platform", "manylinux2014_x86_64"),
)
# the carried pieces, and the make target that makes each
NEEDED = ((WHEEL_DIR, "device-wheels"), (MODEL_ARCHIVE, "device-data"), (DATA_ARCHIVE, "device-data"))
DEVICE_COMMAND = "PYTHONUNBUFFERED=1 python3 -m bench.gpu_device_check"
SITE = Path(tempfile.gettempdir()) / "ftpipe-device-site"  # where the carried wheels are installed
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "DO_NOT_TRACK": "1"}


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


# ------------------------------------------------------------------------------------ the carried wheels


@dataclass(frozen=True)
class Wheel:
    """A carried wheel: its distribution (canonical name), version and the requirements that apply here."""

    name: str
    version: Version
    path: Path
    requires: tuple[Requirement, ...]


def read_wheel(path: Path) -> Wheel:
    """Name and version from the file name; Requires-Dist from its METADATA (extras and other
    platforms' markers dropped)."""
    name, version, _, _ = parse_wheel_filename(path.name)
    with zipfile.ZipFile(path) as zf:
        meta = next(n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        headers = email.parser.Parser().parsestr(zf.read(meta).decode("utf-8"), headersonly=True)
    reqs = [Requirement(r) for r in headers.get_all("Requires-Dist") or []]
    applies = tuple(r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""}))
    return Wheel(str(name), version, path, applies)


def installed_version(name: str) -> Version | None:
    """The version of `name` this interpreter would import, None when it has none."""
    try:
        return Version(importlib.metadata.version(name))
    except importlib.metadata.PackageNotFoundError:
        return None


def plan_installs(
    wheels: dict[str, Wheel],
    roots: tuple[str, ...] = ROOTS,
    installed: Callable[[str], Version | None] = installed_version,
) -> tuple[list[Wheel], list[str]]:
    """The carried wheels to install, and warnings: each root unless the machine has the carried (locked)
    version, then every requirement of a wheel to install that the machine does not meet. A requirement
    neither the machine nor the carry meets is a warning (the import that needs it will say more)."""
    chosen: dict[str, Wheel] = {}
    wanted: list[tuple[str, SpecifierSet, str]] = [
        (r, SpecifierSet(f"=={wheels[r].version}"), "requirements.lock") for r in roots if r in wheels
    ]
    seen: list[tuple[str, SpecifierSet, str]] = []
    while wanted:
        name, spec, why = wanted.pop(0)
        seen.append((name, spec, why))
        have = chosen[name].version if name in chosen else installed(name)
        if have is not None and spec.contains(have, prereleases=True):
            continue
        wheel = wheels.get(name)
        if name in chosen or wheel is None or not spec.contains(wheel.version, prereleases=True):
            continue  # not met: said once, below
        chosen[name] = wheel
        wanted += [(canonicalize_name(r.name), r.specifier, name) for r in wheel.requires]
    warnings = []
    for name, spec, why in seen:
        have = chosen[name].version if name in chosen else installed(name)
        if have is None or not spec.contains(have, prereleases=True):
            found = f"{name} {have}" if have else f"no {name}"
            warnings.append(
                f"{why} needs {name}{spec or ''}: the machine has {found} and the carry none that fits"
            )
    return list(chosen.values()), sorted(set(warnings))


def install(wheels: list[Wheel], target: Path) -> str:
    """Install `wheels` into `target` (emptied first), without an index or dependencies; how it was done.

    pip where the interpreter has it; else each wheel unzipped, which is what an install of a wheel
    amounts to for importing it (no scripts, no bytecode)."""
    if not wheels:
        return "nothing to install: the machine has what the core imports"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile"]
    pip += ["--no-cache-dir", "--disable-pip-version-check", "--target", str(target)]
    proc = subprocess.run([*pip, *(str(w.path) for w in wheels)], capture_output=True, text=True)
    if proc.returncode == 0:
        return "pip install --no-index --no-deps --target"
    shutil.rmtree(target)
    target.mkdir()
    for w in wheels:
        with zipfile.ZipFile(w.path) as zf:
            zf.extractall(target)
    return f"unzipped (pip failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]})"


def bootstrap(wheel_dir: Path, target: Path = SITE) -> dict[str, Any]:
    """Install what the core lacks from `wheel_dir` and put it first on sys.path; what was done."""
    wheels = (
        {w.name: w for w in map(read_wheel, sorted(wheel_dir.glob("*.whl")))} if wheel_dir.is_dir() else {}
    )
    chosen, warnings = plan_installs(wheels)
    how = install(chosen, target)
    if chosen:
        sys.path.insert(0, str(target))
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))
        importlib.invalidate_caches()
    for w in warnings:
        print(f"gpu_device_check: WARNING {w}", flush=True)
    return {
        "wheel_dir": str(wheel_dir),
        "carried": sorted(f"{w.name}=={w.version}" for w in wheels.values()),
        "installed": [f"{w.name}=={w.version}" for w in chosen],
        "how": how,
        "site": str(target) if chosen else None,
        "warnings": warnings,
    }


# -------------------------------------------------------------------------------------- the dry run


def carried_files(root: Path, carry: list[Path]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(working tree, carried paths) as (path, bytes): the tree is what git does not ignore, tracked or not,
    as the device tool sends it; the carried paths are files under each of `carry`."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    tree = sorted({p for p in out.split("\0") if p and os.path.lexists(root / p)})
    files = [(p, (root / p).lstat().st_size) for p in tree]
    extra = []
    for c in carry:
        path = root / c
        found = sorted(path.rglob("*")) if path.is_dir() else [path] if path.exists() else []
        extra += [(str(f.relative_to(root)), f.stat().st_size) for f in found if f.is_file()]
    return files, extra


def dry_run(root: Path, carry: list[Path], limit: int = CARRY_LIMIT) -> int:
    """Print what one device call would carry and its total; 1 when it is over `limit` or a piece the
    check needs is missing (the make target that makes it is named), else 0."""
    tree, extra = carried_files(root, carry)
    tree_bytes = sum(n for _, n in tree)
    print(f"gpu_device_check dry run: what one device call carries (limit {mib(limit)})")
    largest = ", ".join(f"{p} {mib(n)}" for p, n in sorted(tree, key=lambda x: -x[1])[:3])
    print(f"  working tree (tracked + untracked, not ignored): {len(tree)} files, {mib(tree_bytes)}")
    print(f"      largest: {largest}")
    for p, n in extra:
        print(f"  {p:<72} {mib(n):>10}")
    total = tree_bytes + sum(n for _, n in extra)
    missing = [f"{p} (make {target})" for p, target in NEEDED if not (root / p).exists()]
    for m in missing:
        print(f"  MISSING {m}")
    verdict = "fits" if total <= limit else "OVER THE LIMIT"
    print(
        f"  total {mib(total)} of {mib(limit)}: {verdict} "
        f"({mib(abs(limit - total))} {'to spare' if total <= limit else 'too much'})"
    )
    print(f"  device call: run(command='{DEVICE_COMMAND}', carry={[str(c) for c in carry]}, timeout_s=480)")
    return 0 if total <= limit and not missing else 1


# ------------------------------------------------------------------------------------------- the entry


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--dry-run", action="store_true", help="list what a device call carries; exit 1 if over 64 MiB"
    )
    ap.add_argument("--root", type=Path, default=Path("."), help="repository root (the dry run's tree)")
    ap.add_argument("--carry", type=Path, action="append", help=f"carried path (default {CARRY_DIR})")
    ap.add_argument("--wheels", type=Path, default=WHEEL_DIR, help="the carried wheels")
    ap.add_argument("--model", type=Path, default=MODEL_ARCHIVE, help="MiniLM: a .tar.xz or a model folder")
    ap.add_argument(
        "--data", type=Path, default=DATA_ARCHIVE, help="splits + labels.json: a .tar.xz or a folder"
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get("OUT") or "bench/gpu-device-check"),
        help="where gpu_device_check.json goes (default $OUT, the device tool's output folder)",
    )
    ap.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "ftpipe-device-check",
        help="scratch folder (emptied first): models, checkpoints",
    )
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    ap.add_argument("--steps", type=int, default=300, help="optimizer steps of each throughput run (about)")
    ap.add_argument("--large-batch", type=int, default=32, help="batch size of the larger encoder's run")
    ap.add_argument(
        "--large-shape",
        default="",
        help="overrides of the BERT-large shape, e.g. hidden_size=64,num_hidden_layers=2",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    carry = args.carry or [CARRY_DIR]
    if args.dry_run:
        return dry_run(args.root, carry)
    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported
    boot = bootstrap(args.wheels)
    # only now: the core's imports must find the wheels just installed (a module level import would load
    # the machine's own transformers, or fail on datasets)
    runs = importlib.import_module("bench.gpu_device_runs")
    figures = runs.run(args, boot)
    return 1 if any("error" in r for r in figures["runs"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
