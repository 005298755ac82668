"""finetune with `strategy: fsdp` (FSDP2 over gloo, 2 CPU processes) and across 2 "nodes" on 127.0.0.1.

The base model has no dropout, so a 2-process run and a 1-process run on the same global batch see the same
numbers and differ only in the order of floating-point sums. Measured on an Intel Xeon (avx512_bf16),
2026-12-06, 4 epochs: the final weights of fsdp and of a 1-process run differ by 4.2e-5 in relative L2 norm
(fsdp and ddp by 2.6e-5; 2 nodes x 1 process and 1 node x 2 by 5.6e-5), the train losses by 2e-7 relative.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.config.params import ParamsError, validate_section
from stages.model.launcher import torchrun_command
from stages.model.recipe import Paths, run_finetune
from stages.model.sharding import block_class_names, fsdp_config
from tests.conftest import REPO, build_splits, relative_diff, run_cmd
from tests.conftest import model_weights as weights

# 60 train rows: 15 optimizer steps an epoch at a global batch of 4 (2 processes x 2, or 1 x 4). A global batch
# that does not divide the rows would make the runs differ in data, not in arithmetic: with 2 processes the
# last batch of an epoch is filled up with rows from the start (accelerate's even_batches).
SHARED = {
    "epochs": 4,
    "learning_rate": 5e-3,
    "warmup": 0.0,
    "patience": 0,
    "precision": "fp32",
    "pooling": "native",  # BertForSequenceClassification: dropout from the base config, here none
}
TWO = {**SHARED, "batch_size": 2, "num_processes": 2}
ONE = {**SHARED, "batch_size": 4}
# tolerances against the 1-process run, measured values in the module docstring
WEIGHTS_TOL = 1e-3  # relative L2 norm of the difference of the final weights
TRAIN_LOSS_TOL = 1e-4  # relative, per epoch (validation loss is a mean of batch means: the batches differ)


@pytest.fixture(scope="module")
def data(
    tmp_path_factory: pytest.TempPathFactory, no_dropout_bert: Path, corpus: list[dict[str, str]]
) -> tuple[Path, Path]:
    return build_splits(no_dropout_bert, corpus, tmp_path_factory.mktemp("sharded-data"), max_length=16)


def paths(run: Path, data: tuple[Path, Path]) -> Paths:
    return Paths(*data, *(run / n for n in ("model", "ckpt", "finetune.json", "history.json", "curves.png")))


def stage_cmd(run: Path, model: Path, data: tuple[Path, Path], finetune: dict[str, Any]) -> list[str]:
    """`python -m stages.finetune` on its own params.yaml in `run`."""
    run.mkdir(parents=True, exist_ok=True)
    params = run / "params.yaml"
    params.write_text(yaml.safe_dump({"tokenize": {"model": str(model)}, "finetune": finetune}))
    p = paths(run, data)
    args = [
        "--params",
        str(params),
        "--splits",
        str(p.splits),
        "--labels",
        str(p.labels),
        "--out",
        str(p.out),
    ]
    args += ["--checkpoints", str(p.checkpoints), "--report", str(p.report), "--history", str(p.history)]
    return [sys.executable, "-m", "stages.finetune", *args, "--plot", str(p.plot)]


def history(run: Path) -> list[dict[str, float]]:
    return list(json.loads((run / "history.json").read_text()))


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, no_dropout_bert: Path, data: tuple[Path, Path]
) -> dict[str, Path]:
    """The reference runs: 1 process (in this process), fsdp and ddp on 2 processes; same global batch."""
    root = tmp_path_factory.mktemp("sharded-runs")
    import logging

    p = FinetuneParams(**ONE)
    run_finetune(p, BaseModelRef(model=str(no_dropout_bert)), paths(root / "one", data), logging.getLogger())
    out = {"one": root / "one"}
    for strategy in ("fsdp", "ddp"):
        out[strategy] = root / strategy
        proc = run_cmd(stage_cmd(out[strategy], no_dropout_bert, data, {**TWO, "strategy": strategy}), REPO)
        (out[strategy] / "stderr.txt").write_text(proc.stderr)
    return out


@pytest.mark.slow  # 2 gloo processes (the marker's definition); `make test-slow`
def test_fsdp_matches_one_process_on_the_same_global_batch(runs: dict[str, Path]) -> None:
    one, fsdp = history(runs["one"]), history(runs["fsdp"])
    assert len(one) == len(fsdp) == SHARED["epochs"]
    gaps = {
        "train_loss": max(
            abs(a["train_loss"] - b["train_loss"]) / a["train_loss"] for a, b in zip(one, fsdp, strict=True)
        ),
        "weights": relative_diff(weights(runs["one"]), weights(runs["fsdp"])),
        "fsdp_vs_ddp": relative_diff(weights(runs["ddp"]), weights(runs["fsdp"])),
    }
    print("fsdp vs 1 process:", gaps)
    assert gaps["train_loss"] <= TRAIN_LOSS_TOL and gaps["weights"] < WEIGHTS_TOL, gaps
    assert [r["val_macro_f1"] for r in one] == [r["val_macro_f1"] for r in fsdp]
    assert gaps["fsdp_vs_ddp"] < WEIGHTS_TOL, gaps


@pytest.mark.slow  # 2 gloo processes (the marker's definition); `make test-slow`
def test_fsdp_writes_the_folder_a_ddp_run_writes(runs: dict[str, Path]) -> None:
    fsdp, ddp = runs["fsdp"], runs["ddp"]
    assert sorted(f.name for f in (fsdp / "model").iterdir()) == sorted(
        f.name for f in (ddp / "model").iterdir()
    )
    assert (fsdp / "model" / "config.json").read_text() == (ddp / "model" / "config.json").read_text()
    report = json.loads((fsdp / "finetune.json").read_text())
    assert (report["strategy"], report["num_processes"]) == ("fsdp", 2)
    stderr = (fsdp / "stderr.txt").read_text()
    assert "pytorch_model_fsdp_0" in stderr  # the checkpoints were sharded (DCP), not gathered
    assert not (fsdp / "ckpt").exists()


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the launcher, torchrun and every worker at once, as a lost machine would."""
    import psutil

    root = psutil.Process(proc.pid)
    for p in [root, *root.children(recursive=True)]:
        p.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow  # 2 gloo processes (the marker's definition); `make test-slow`
def test_fsdp_resumes_after_kill_9_to_the_same_weights(
    tmp_path: Path, runs: dict[str, Path], no_dropout_bert: Path, data: tuple[Path, Path]
) -> None:
    cmd = stage_cmd(tmp_path, no_dropout_bert, data, {**TWO, "strategy": "fsdp"})
    ckpt = tmp_path / "ckpt"
    with (tmp_path / "killed.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 240
        while proc.poll() is None and time.time() < deadline:
            # a finished sharded checkpoint: both DCP folders and, written last, the trainer state
            if any((c / "trainer_state.json").is_file() for c in ckpt.glob("checkpoint-*")):
                kill_tree(proc)
                break
            time.sleep(0.02)
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-3000:]
    assert not (tmp_path / "model").exists()

    proc2 = run_cmd(cmd, REPO)
    assert "resuming from" in proc2.stderr and "checkpoint-15" in proc2.stderr, proc2.stderr[-3000:]
    assert history(tmp_path) == history(runs["fsdp"])  # as if never interrupted
    a, b = weights(tmp_path), weights(runs["fsdp"])
    assert all(torch.equal(a[k], b[k]) for k in a)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # 2 gloo processes (the marker's definition); `make test-slow`
def test_two_nodes_on_localhost_train_as_two_processes(
    tmp_path: Path, runs: dict[str, Path], no_dropout_bert: Path, data: tuple[Path, Path]
) -> None:
    """Two launchers (the two "nodes", 1 process each) meet at a c10d rendezvous on 127.0.0.1; on a shared
    folder they train exactly what one node with 2 processes trains."""
    layout = {"num_processes": 1, "num_nodes": 2, "rdzv_endpoint": f"127.0.0.1:{free_port()}"}
    cmd = stage_cmd(tmp_path, no_dropout_bert, data, {**TWO, **layout})
    logs = [(tmp_path / f"node{i}.log").open("wb") for i in range(2)]
    nodes = [subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT) for f in logs]
    try:
        codes = [n.wait(timeout=300) for n in nodes]
    finally:
        for n in nodes:
            n.kill()
        for f in logs:
            f.close()
    out = [(tmp_path / f"node{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], "\n".join(o[-3000:] for o in out)
    assert all("--nnodes=2" in o and "--rdzv-backend=c10d" in o for o in out)
    assert "one of 2 nodes" in out[0]
    report = json.loads((tmp_path / "finetune.json").read_text())
    assert report["num_processes"] == 2
    gap = relative_diff(weights(runs["ddp"]), weights(tmp_path))
    print("2 nodes x 1 vs 1 node x 2:", gap)
    assert gap < WEIGHTS_TOL


def test_the_blocks_are_the_shard_groups(no_dropout_bert: Path) -> None:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(no_dropout_bert)
    assert block_class_names(model) == ["BertLayer"]
    config = fsdp_config(model, activation_checkpointing=True)
    assert config["version"] == 2 and config["state_dict_type"] == "SHARDED_STATE_DICT"
    assert config["transformer_layer_cls_to_wrap"] == ["BertLayer"]
    assert config["activation_checkpointing"] is True


def test_torchrun_command_single_and_multi_node() -> None:
    one = torchrun_command(FinetuneParams(num_processes=2), ["--params", "p.yaml"])
    assert "--standalone" in one and "--nproc-per-node=2" in one and one[-2:] == ["--params", "p.yaml"]
    multi = FinetuneParams(num_processes=4, num_nodes=2, rdzv_endpoint="node0.internal:29400", rdzv_id="r1")
    cmd = torchrun_command(multi, [])
    assert "--standalone" not in cmd
    for arg in ("--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=node0.internal:29400", "--rdzv-id=r1"):
        assert arg in cmd
    assert "--nproc-per-node=4" in cmd


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"strategy": "fsdp"}, r"strategy = fsdp shards the model across processes: set num_processes >= 2"),
        ({"num_nodes": 2}, r"num_nodes = 2 needs rdzv_endpoint"),
        ({"num_nodes": 2, "rdzv_endpoint": "node0"}, r"use host:port"),
        ({"strategy": "zero3"}, r"`finetune.strategy` = 'zero3'"),
    ],
)
def test_layout_params_are_validated(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        validate_section("finetune", section, FinetuneParams)
