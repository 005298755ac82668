"""bench/gpu_device_check.py: the CPU path on a tiny model, which wheels it installs, the dry run."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import bench.gpu_device_check as gdc
from bench.gpu_check import train_flops_per_sample
from bench.gpu_device_prep import lock_pins
from bench.gpu_device_runs import train_flops
from tests.conftest import REPO, TINY_BERT_SHAPE, build_splits

TINY_LARGE = "hidden_size=48,num_hidden_layers=2,num_attention_heads=2,intermediate_size=96"


def test_the_cpu_path_runs_the_core_and_writes_every_figure(
    tmp_path: Path, tiny_bert: Path, corpus: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same entry as on the GPU machine, on the CPU with a tiny model and a few steps: three runs
    through the finetune core, their figures in one JSON; the GPU-only figures say they are unmeasured."""
    build_splits(tiny_bert, corpus, tmp_path / "data", windows=2)
    monkeypatch.chdir(REPO)  # params.yaml's finetune recipe
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    argv = ["--device", "cpu", "--steps", "4", "--model", str(tiny_bert), "--data", str(tmp_path / "data")]
    argv += [
        "--out",
        str(tmp_path / "out"),
        "--work",
        str(tmp_path / "work"),
        "--wheels",
        str(tmp_path / "none"),
    ]
    assert gdc.main([*argv, "--large-shape", TINY_LARGE, "--large-batch", "8"]) == 0

    figures = json.loads((tmp_path / "out" / "gpu_device_check.json").read_text())
    assert figures["carry"]["installed"] == []  # this venv has every pin of requirements.lock
    minilm, large, acc = (figures["runs"][k] for k in ("minilm", "large", "accuracy"))
    assert minilm["device"] == "cpu" and minilm["precision"] == "bf16" and minilm["steps"] == 4
    assert (minilm["layers"], minilm["hidden"]) == (2, TINY_BERT_SHAPE["hidden_size"])
    assert minilm["timed_steps"] == 4 and minilm["samples_per_s"] > 0 and minilm["tokens_per_s"] > 0
    assert minilm["achieved_tflops"] > 0 and minilm["padded_tokens_per_s"] >= minilm["tokens_per_s"]
    assert minilm["mfu"] is None and minilm["peak_memory_allocated_gib"] is None  # no GPU here
    assert minilm["planned_memory"]["total_gib"] > minilm["planned_memory"]["tensors_gib"] > 0
    assert "val_macro_f1" in minilm["last_epoch_validation"]
    assert large["shape"]["hidden_size"] == 48 and large["hidden"] == 48 and large["batch_size"] == 8
    assert large["steps"] == 4 and large["achieved_tflops"] > 0
    assert acc["epochs"] == 1 and 0.0 <= acc["validation"]["macro_f1"] <= 1.0
    assert "model.safetensors" in acc["saved"] and "ftpipe_params.json" in acc["saved"]
    assert any("no CUDA device" in line for line in figures["unmeasured"])
    assert figures["flops_formula"].startswith("per step: 3 x")


def test_on_the_cpu_the_cuda_path_refuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="torch sees no CUDA device"):
        gdc.main(["--wheels", str(tmp_path / "none"), "--work", str(tmp_path / "w"), "--out", str(tmp_path)])


def test_train_flops_is_gpu_checks_formula_summed_over_samples() -> None:
    linear, layers, hidden = 6 * (4 * 384 * 384 + 2 * 384 * 1536), 6, 384
    one = train_flops_per_sample(linear, layers, hidden, 128)
    assert train_flops(linear, layers, hidden, 128, 128 * 128) == one
    assert (
        train_flops(linear, layers, hidden, 100 + 28, 100**2 + 28**2) < 2 * one
    )  # attention: s^2 per sample


def wheel(name: str, version: str, *requires: str) -> gdc.Wheel:
    return gdc.Wheel(name, Version(version), Path(f"{name}-{version}.whl"), tuple(map(Requirement, requires)))


def test_it_installs_the_roots_and_only_the_requirements_the_machine_does_not_meet() -> None:
    carried = {
        w.name: w
        for w in (
            wheel("transformers", "5.24.0", "huggingface-hub>=1.31", "tokenizers>=0.23.1"),
            wheel("datasets", "5.2.0", "dill<0.4.2", "fsspec<=2026.9.0", "pyarrow>=24", "xxhash"),
            wheel("pydantic", "2.14.4", "pydantic-core==2.50.5", "typing-extensions>=4.16.0"),
            wheel("pydantic-core", "2.50.5", "typing-extensions>=4.16.0"),
            wheel("dill", "0.4.1"),
            wheel("fsspec", "2026.9.0"),
            wheel("typing-extensions", "4.16.0"),
        )
    }
    machine = {  # the GPU machine's image, as KINDS.md lists it (versions made up where it gives none)
        "transformers": "5.17.0",
        "huggingface-hub": "1.33.0",
        "tokenizers": "0.23.2",
        "fsspec": "2026.11.0",
        "pyarrow": "23.0.0",
        "typing-extensions": "4.16.0",
    }
    chosen, warnings = gdc.plan_installs(
        carried, installed=lambda n: Version(machine[n]) if n in machine else None
    )
    names = sorted(w.name for w in chosen)
    # transformers: 5.17 is not the locked 5.24; fsspec: too new for datasets; typing-extensions: new enough
    assert names == ["datasets", "dill", "fsspec", "pydantic", "pydantic-core", "transformers"]
    assert warnings == [
        "datasets needs pyarrow>=24: the machine has pyarrow 23.0.0 and the carry none that fits",
        "datasets needs xxhash: the machine has no xxhash and the carry none that fits",
    ]
    machine.update(transformers="5.24.0", datasets="5.2.0", pydantic="2.14.4", pyarrow="25.0.1", xxhash="3.5")
    chosen, warnings = gdc.plan_installs(
        carried, installed=lambda n: Version(machine[n]) if n in machine else None
    )
    assert chosen == [] and warnings == []  # the lock's own versions there: nothing to install


def make_wheel(folder: Path) -> Path:
    """A one-module wheel as pip builds them: module, METADATA (a requirement, an extra), WHEEL, RECORD."""
    path = folder / "demo_pkg-1.0-py3-none-any.whl"
    info = "demo_pkg-1.0.dist-info"
    files = {
        "demo_pkg/__init__.py": "VALUE = 42\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n"
        'Requires-Dist: numpy>=1\nRequires-Dist: pytest; extra == "dev"\n',
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


@pytest.mark.parametrize("pip", [True, False], ids=["pip", "unzip"])
def test_a_carried_wheel_is_read_and_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pip: bool
) -> None:
    w = gdc.read_wheel(make_wheel(tmp_path))
    assert (w.name, str(w.version), [str(r) for r in w.requires]) == ("demo-pkg", "1.0", ["numpy>=1"])
    if not pip:  # an interpreter without pip: the wheel is unzipped
        monkeypatch.setattr(sys, "executable", "/bin/false")
    how = gdc.install([w], tmp_path / "site")
    assert how.startswith("pip" if pip else "unzipped")
    assert (tmp_path / "site" / "demo_pkg" / "__init__.py").read_text() == "VALUE = 42\n"
    assert gdc.install([], tmp_path / "site").startswith("nothing to install")


def carry_repo(root: Path, archive_bytes: int = 1000) -> Path:
    """A git checkout with one tracked file, one untracked one and the carried folder (git-ignored)."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("/.device-carry/\n")
    (root / "tracked.txt").write_text("x" * 100)
    subprocess.run(["git", "add", "tracked.txt", ".gitignore"], cwd=root, check=True)
    (root / "untracked.txt").write_text("y" * 50)
    (root / gdc.WHEEL_DIR).mkdir(parents=True)
    (root / gdc.WHEEL_DIR / "a-1.0-py3-none-any.whl").write_bytes(b"w" * 2000)
    (root / gdc.MODEL_ARCHIVE).write_bytes(b"m" * archive_bytes)
    (root / gdc.DATA_ARCHIVE).write_bytes(b"d" * 300)
    return root


def test_the_dry_run_lists_the_carry_and_its_total(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = carry_repo(tmp_path)
    assert gdc.main(["--dry-run", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "working tree (tracked + untracked, not ignored): 3 files" in out  # .gitignore, tracked, untracked
    for path in (gdc.WHEEL_DIR / "a-1.0-py3-none-any.whl", gdc.MODEL_ARCHIVE, gdc.DATA_ARCHIVE):
        assert str(path) in out
    assert "fits" in out and "carry=['.device-carry']" in out
    tree, extra = gdc.carried_files(root, [gdc.CARRY_DIR])
    assert sum(n for _, n in tree) == len("/.device-carry/\n") + 150 and sum(n for _, n in extra) == 3300


def test_the_dry_run_fails_over_the_limit_or_with_a_piece_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = carry_repo(tmp_path)
    assert gdc.dry_run(root, [gdc.CARRY_DIR], limit=3000) == 1
    assert "OVER THE LIMIT" in capsys.readouterr().out
    (root / gdc.DATA_ARCHIVE).unlink()
    assert gdc.dry_run(root, [gdc.CARRY_DIR]) == 1
    assert f"MISSING {gdc.DATA_ARCHIVE} (make device-data)" in capsys.readouterr().out


def test_every_carried_wheel_is_pinned_in_the_lock() -> None:
    """`make device-wheels` downloads the lock's pins: a package the lock drops must leave WHEELS too."""
    pins = lock_pins()
    assert [n for n in gdc.WHEELS if n not in pins] == []
