"""Several training processes: the finetune stage relaunched under `torchrun` (gloo on the CPU, nccl on GPUs).

    launch_distributed(params, base, paths, sys.argv[1:], log)   # when num_processes or num_nodes > 1

The launcher prepares the checkpoint folder once (the workers only read it), marks its workers with
CHILD_ENV, and clears the checkpoints when every worker has finished; a failed run keeps them for a resume.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys

from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.model.checkpoints import prepare_checkpoints, run_fingerprint
from stages.model.recipe import Paths
from stages.model.runtime import CHILD_ENV
from stages.model.trainer import FinetuneError


def torchrun_command(p: FinetuneParams, argv: list[str]) -> list[str]:
    """`torchrun` running the finetune stage with `argv`: `--standalone` on one node; on several, `--nnodes`
    and a c10d rendezvous at `finetune.rdzv_endpoint` that every node's launcher joins (docs/training.md)."""
    if p.num_nodes > 1:
        layout = [
            f"--nnodes={p.num_nodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={p.rdzv_endpoint}",
            f"--rdzv-id={p.rdzv_id}",
        ]
    else:
        layout = ["--standalone"]
    run = [sys.executable, "-m", "torch.distributed.run", *layout]
    return [*run, f"--nproc-per-node={p.num_processes}", "-m", "stages.finetune", *argv]


def launch_distributed(
    p: FinetuneParams, base: BaseModelRef, paths: Paths, argv: list[str], log: logging.Logger
) -> None:
    """Run the finetune stage under `torchrun` (`torchrun_command`); prepare and finally clear the checkpoints."""
    prepare_checkpoints(paths.checkpoints, run_fingerprint(p, base, paths.splits, paths.labels), log)
    cmd = torchrun_command(p, argv)
    nodes = f" on this node, one of {p.num_nodes} nodes" if p.num_nodes > 1 else ""
    log.info("launching %d processes%s: %s", p.num_processes, nodes, " ".join(cmd))
    proc = subprocess.run(cmd, env={**os.environ, CHILD_ENV: "1"}, check=False)
    if proc.returncode != 0:
        raise FinetuneError(
            f"finetune: the {p.num_processes}-process run failed (exit {proc.returncode}); see the worker "
            f"output above. Checkpoints stay in {paths.checkpoints} for a resume."
        )
    shutil.rmtree(paths.checkpoints, ignore_errors=True)
