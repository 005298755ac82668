"""finetune: full-parameter fine-tuning of `tokenize.model` on the train split, early-stopped on validation.

    python -m stages.finetune --splits data/processed/splits --labels data/processed/labels.json \
        --out models/model --checkpoints checkpoints/finetune --report reports/finetune.json \
        --history reports/finetune_history.json --plot reports/finetune_curves.png

The base checkpoint gets a sequence-classification head sized from labels.json (id2label/label2id go into
its config) and every parameter is trained (`freeze: encoder` trains the head alone, the classic
baseline). The head reads the mean of the body's last hidden states (`pooling: mean`, how
sentence-embedding checkpoints such as MiniLM were trained to be read) or is the architecture's own
(`native`). A text the tokenize stage cut into several windows trains on one of them per epoch, drawn
afresh each epoch (seeded); validation scores a text by the mean of its windows' probabilities, as
evaluate and the served model do. The Hugging Face `Trainer` does the work: mixed precision (bf16 on a
CUDA device that has it, fp32 on the CPU), gradient accumulation, one checkpoint per epoch in
`--checkpoints` (not a DVC output), early stopping on the validation metric and reloading the best epoch.
An interrupted run resumes from its last checkpoint when params and data are unchanged; a NaN or
infinite loss stops the run naming the step. `num_processes > 1` relaunches this module under
`torchrun` (gloo on the CPU, nccl on GPUs).
Decoder-only checkpoints without a pad token get pad = eos.

This module parses the params and paths, checks the memory plan and calls the library (stages/model/):
`recipe.run_finetune` is three steps, `setup` (runtime, data, the checkpoint to resume from, the seeded
model and window datasets), `train` (`FinetuneTrainer`, stages/model/trainer.py: the NaN guard,
throughput and progress lines) and `save` (model, history, curves, report); `launcher` runs it under
`torchrun`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.config.tokenize import TokenizeParams
from stages.core.logs import setup_logging
from stages.model.launcher import launch_distributed
from stages.model.memplan import require_fit
from stages.model.recipe import Paths, run_finetune
from stages.model.runtime import resolve_runtime


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "finetune")
    args = ap.parse_args(argv)
    log = setup_logging("finetune")
    p = load_section("finetune", FinetuneParams, args.params)
    tokenize = load_section("tokenize", TokenizeParams, args.params)
    base = BaseModelRef.from_tokenize(tokenize)
    paths = Paths(
        *(
            Path(getattr(args, k))
            for k in ("splits", "labels", "out", "checkpoints", "report", "history", "plot")
        )
    )
    if "WORLD_SIZE" not in os.environ:  # the memory plan, once per machine: before any data or worker
        rt = resolve_runtime(p)
        require_fit(
            p,
            base.model,
            base.trust_remote_code,
            tokenize.max_length,
            paths.labels,
            rt.device,
            rt.precision,
            log,
        )
    if (p.num_processes > 1 or p.num_nodes > 1) and "WORLD_SIZE" not in os.environ:
        launch_distributed(p, base, paths, argv, log)
    else:
        run_finetune(p, base, paths, log)


if __name__ == "__main__":
    main()
