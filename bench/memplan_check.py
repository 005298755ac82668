"""memplan_check: the memory plan (stages/model/memplan.py) against the peak RSS of real training steps, on the CPU.

    .venv/bin/python -m bench.memplan_check --model tiny --steps 5
    .venv/bin/python -m bench.memplan_check --model builtin:minilm-l6 --steps 5
    .venv/bin/python -m bench.memplan_check --model builtin:minilm-l6 --steps 5 --precision bf16 --checkpointing

Each model is measured in its own process, which starts one training child and reads the child's peak RSS
(`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`) once it has exited. The child builds the classifier the
finetune stage builds (`load_model_and_tokenizer`), the stage's own `TrainingArguments`
(`training_arguments`, with evaluation and checkpoints switched off and `max_steps` set) and its
`FinetuneTrainer`, and trains on random token ids of exactly `tokenize.max_length`: the worst case the
plan is for. Batch size, precision (`auto` resolved as the stage does) and the rest come from params.yaml
unless overridden. `tiny` is the tests' 2-layer, 32-wide BERT shape with MiniLM's vocabulary (so it can
use MiniLM's tokenizer). Memory is not timing: a busy machine gives the same figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TINY_SHAPE: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
NAMES = ["business", "entertainment", "politics", "sports", "tech"]


def build_tiny(out: Path) -> str:
    """The tests' tiny BERT shape with MiniLM's tokenizer, saved to `out`."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from stages.model.resolve import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("builtin:minilm-l6"))
    tok.save_pretrained(out)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), max_position_embeddings=512, **TINY_SHAPE)).save_pretrained(out)
    return str(out)


def recipe(args: argparse.Namespace) -> tuple[Any, int]:
    """The finetune params (params.yaml's, with this run's overrides) and tokenize.max_length."""
    from stages.config.finetune import FinetuneParams
    from stages.config.params import load_section
    from stages.config.tokenize import TokenizeParams

    p = load_section("finetune", FinetuneParams, str(args.params))
    max_length = args.max_length or load_section("tokenize", TokenizeParams, str(args.params)).max_length
    changes: dict[str, Any] = {"patience": 0}
    if args.batch_size:
        changes["batch_size"] = args.batch_size
    if args.precision:
        changes["precision"] = args.precision
    if args.checkpointing:
        changes["activation_checkpointing"] = True
    return p.model_copy(update=changes), max_length


def train_child(args: argparse.Namespace) -> None:
    """Train `args.steps` steps the way the finetune stage does; print the plan as one JSON line."""
    import torch
    from datasets import Dataset
    from transformers import DataCollatorWithPadding

    from stages.config.finetune import BaseModelRef
    from stages.model.build import load_model_and_tokenizer
    from stages.model.memplan import Layout, layout_for, make_plan, model_shape
    from stages.model.runtime import resolve_runtime
    from stages.model.trainer import FinetuneTrainer
    from stages.model.training import training_arguments

    imported_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    p, max_length = recipe(args)
    work = Path(tempfile.mkdtemp(prefix="memplan-"))
    ref = build_tiny(work / "tiny") if args.model == "tiny" else args.model
    rt = resolve_runtime(p)
    model, tok = load_model_and_tokenizer(BaseModelRef(model=ref), NAMES, p.freeze, p.pooling)
    n = args.steps * p.batch_size
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, len(tok), (n, max_length), generator=gen)
    data: dict[str, Any] = {"input_ids": ids.tolist(), "attention_mask": [[1] * max_length] * n}
    if "token_type_ids" in tok.model_input_names:
        data["token_type_ids"] = [[0] * max_length] * n
    data["labels"] = torch.randint(0, len(NAMES), (n,), generator=gen).tolist()
    targs = dataclasses.replace(
        training_arguments(p, rt, work / "ckpt"),
        max_steps=args.steps,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
    )
    trainer = FinetuneTrainer(
        logging.getLogger("ftpipe.memplan_check"),
        model=model,
        args=targs,
        data_collator=DataCollatorWithPadding(tok),
        train_dataset=Dataset.from_dict(data),
        processing_class=tok,
    )
    trainer.train()
    shape = model_shape(ref, len(NAMES), p.pooling, p.freeze)
    layout: Layout = layout_for(p, rt.device, rt.precision, max_length)
    plan = make_plan(shape, layout, 2**62, "not checked")
    rows = {r.name: r.bytes for r in plan.rows}
    print(json.dumps({"planned": plan.per_process, "rows": rows, "imported_rss": imported_rss}))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run one training child; its plan and its peak RSS (this process's only child)."""
    cmd = [sys.executable, "-m", "bench.memplan_check", "--child", "--model", args.model]
    cmd += ["--steps", str(args.steps), "--params", str(args.params)]
    for flag in ("batch_size", "max_length", "precision"):
        if getattr(args, flag):
            cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    cmd += ["--checkpointing"] if args.checkpointing else []
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"training child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["measured"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="tiny, or a model ref as tokenize.model takes it")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--batch-size", type=int, help="default: finetune.batch_size")
    ap.add_argument("--max-length", type=int, help="default: tokenize.max_length")
    ap.add_argument("--precision", choices=["fp32", "bf16"], help="default: finetune.precision")
    ap.add_argument("--checkpointing", action="store_true", help="activation_checkpointing: true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        train_child(args)
        return
    r = measure(args)
    mib = 2**20
    for name, size in r["rows"].items():
        print(f"  {name:<16}{size / mib:>9.1f} MiB")
    print(f"RSS after imports {r['imported_rss'] / mib:.0f} MiB")
    ratio = r["planned"] / r["measured"]
    print(
        f"{args.model}: planned {r['planned'] / mib:.0f} MiB, measured peak RSS {r['measured'] / mib:.0f} MiB, "
        f"planned/measured {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
