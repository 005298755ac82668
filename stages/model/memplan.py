"""The memory plan: what one training process will hold at its peak, computed before anything is loaded.

    ftpipe plan                                   # the table for params.yaml; exit 2 when it does not fit
    FTPIPE_MEMORY_BUDGET_GB=4 ftpipe plan         # the same against a budget you set
    shape = model_shape("builtin:minilm-l6", num_labels=5, pooling="mean", freeze="none")
    plan = make_plan(shape, Layout(device="cpu", precision="fp32", batch_size=16, max_length=128), *budget)
    print(format_plan(plan)); plan.fits or print(refusal(plan))

The finetune stage calls `require_fit` before it reads any data (and before `torchrun` starts workers),
so a run that cannot fit stops in seconds with the change to make, not after minutes of loading.

Rows, in bytes per process (P = parameters, T = trainable parameters, L = layers; b batch, s max_length,
h hidden, i intermediate, a heads): weights 4P (the stage loads fp32; under mixed precision these are the
fp32 master copy), the compute copy (autocast's bf16/fp16 casts of the linear weights, 2 bytes each),
gradients 4T, AdamW's two fp32 moments 8T, activations (`layer_activation_bytes` per layer, see there)
and the framework (the RSS of importing torch, transformers and datasets on the CPU, measured; the CUDA
context on a GPU, estimated). Under `strategy: fsdp` the weights, gradients and moments are divided by the
world size and the largest shard group (a block, or the embeddings) is gathered whole, with its
gradients. The total is the sum of the rows plus the allocator's slack: a slight over-estimate, since
the gradients only exist from the backward pass on, while activations are being freed.

Everything above `model_shape` is pure arithmetic; `model_shape` reads the checkpoint's config.json and
builds the model on the meta device (no weights), and `memory_budget` reads the machine.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from stages.data.label_map import LabelMapError, read_label_names
from stages.model.resolve import resolve_model
from stages.model.sharding import transformer_blocks
from stages.model.trainer import FinetuneError

MIB = 2**20
GIB = 2**30
# The CPU process's RSS before its tensors: 461 MiB after `import stages.finetune` (torch 2.13 cpu,
# transformers 5.24, datasets 5.2, accelerate 1.15; measured 2026-12-05, ru_maxrss), plus about 70 MiB once
# training runs (tokenizer, Trainer, dataset, safetensors loading): the tiny model's 5-step run peaked at
# 560 MiB with about 35 MiB of tensors (bench/memplan_check.py). Re-measure when those versions move.
CPU_FRAMEWORK = 530 * MIB
CUDA_CONTEXT = 600 * MIB  # CUDA context + cuBLAS workspace on one GPU: an estimate, not measured here
ALLOCATOR_SLACK = 0.10  # the allocator's fragmentation and freed-but-kept blocks, a share of the tensors
BUDGET_ENV = "FTPIPE_MEMORY_BUDGET_GB"  # a number of GiB, or `off` to skip the refusal
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


class MemoryPlanError(FinetuneError):
    """The planned peak exceeds the memory budget; the message is the table and the changes that fit."""


class Recipe(Protocol):
    """The `finetune` params the plan reads (FinetuneParams has them all)."""

    @property
    def batch_size(self) -> int: ...
    @property
    def strategy(self) -> str: ...
    @property
    def activation_checkpointing(self) -> bool: ...
    @property
    def gradient_checkpointing(self) -> bool: ...
    @property
    def num_processes(self) -> int: ...
    @property
    def num_nodes(self) -> int: ...
    @property
    def freeze(self) -> str: ...
    @property
    def pooling(self) -> str: ...


@dataclass(frozen=True)
class ModelShape:
    """What the plan needs of a model: its sizes and its exact parameter counts."""

    name: str
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    params: int  # all parameters, the classification head included
    trainable: int  # those the optimizer updates (the head alone under freeze: encoder)
    linear_params: int  # weights of the nn.Linear layers: what autocast casts to the compute dtype
    largest_unit: int  # parameters of the largest FSDP shard group: one block, or the rest of the model


@dataclass(frozen=True)
class Layout:
    """How the model is trained: device, precision, processes, batch, sequence length, recompute."""

    device: str = "cpu"  # cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 | fp16, already resolved (not auto)
    batch_size: int = 16
    max_length: int = 128
    strategy: str = "ddp"  # ddp | fsdp
    world_size: int = 1  # processes in the whole run (all nodes)
    per_node: int = 1  # processes on this machine (they share its RAM on the CPU)
    checkpointing: bool = False  # activation (gradient) checkpointing
    frozen_body: bool = False  # freeze: encoder: no activations kept for the backward pass


@dataclass(frozen=True)
class Row:
    name: str
    bytes: int
    how: str


@dataclass(frozen=True)
class Plan:
    shape: ModelShape
    layout: Layout
    rows: tuple[Row, ...]
    budget: int  # bytes available: per GPU, or this machine's RAM for all its processes on the CPU
    budget_source: str

    @property
    def per_process(self) -> int:
        return sum(r.bytes for r in self.rows)

    @property
    def needed(self) -> int:
        """What must fit in `budget`: one process per GPU; all of this node's processes in the CPU's RAM."""
        share = self.layout.per_node if self.layout.device == "cpu" else 1
        return self.per_process * share

    @property
    def fits(self) -> bool:
        return self.needed <= self.budget


def gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def mib(n: float) -> str:
    return f"{n / MIB:.0f} MiB"


def layer_activation_bytes(shape: ModelShape, layout: Layout) -> int:
    """Bytes one encoder layer keeps for the backward pass (BERT-style block, post-LayerNorm).

    Counted from the tensors autograd saves (checked with `saved_tensors_hooks` on MiniLM, 2026-12-05):
    per token and hidden unit, 3 linear inputs in fp32 (5 under autocast, which casts the shared
    Q/K/V input once per projection) and 2 dropout masks in the compute dtype, plus Q, K, V and the 2
    LayerNorm inputs (the fp32 residual stream); per token and intermediate unit, the GELU input and the
    second linear's input; per token, the 2 LayerNorms' mean and 1/std; per attention score (b*a*s*s), on the CPU, the softmax output, the dropout
    mask and the dropout output, all fp32 (scaled_dot_product_attention's math path, the one the CPU
    takes in training). On CUDA the fused kernels keep no s*s matrix, only the output's logsumexp.
    """
    e = DTYPE_BYTES[layout.precision]
    mixed = layout.precision != "fp32"
    attn = 4 if layout.device == "cpu" else e  # dtype of Q, K, V inside attention
    tokens = layout.batch_size * layout.max_length
    per_hidden = e * ((5 if mixed else 3) + 2) + attn * 3 + 4 * 2
    per_inter = e * 2
    if layout.device == "cpu":
        scores = 3 * 4 * layout.batch_size * shape.heads * layout.max_length**2
    else:
        scores = 4 * layout.batch_size * shape.heads * layout.max_length
    layer_norm_stats = 2 * 2 * 4  # mean and 1/std per token, fp32, for each of the 2 LayerNorms
    return tokens * (shape.hidden * per_hidden + shape.intermediate * per_inter + layer_norm_stats) + scores


def activation_row(shape: ModelShape, layout: Layout) -> Row:
    """All layers' activations, or (checkpointing) each layer's input plus one layer recomputed; and in
    both cases one more layer's worth for the gradients the backward pass computes through a layer (the
    measured peaks sit that much above the saved tensors alone)."""
    layer = layer_activation_bytes(shape, layout)
    residual = 4 * layout.batch_size * layout.max_length * shape.hidden  # one fp32 hidden state
    embeddings = 2 * residual
    if layout.frozen_body:
        return Row("activations", layer, "frozen body: nothing kept, one layer in flight")
    if layout.checkpointing:
        total = shape.layers * residual + 2 * layer + embeddings
        how = f"checkpointed: {shape.layers} layer inputs + 1 layer recomputed ({mib(layer)}) + its backward"
        return Row("activations", total, how)
    total = (shape.layers + 1) * layer + embeddings
    return Row(
        "activations", total, f"{shape.layers} layers x {mib(layer)} + embeddings + 1 layer's backward"
    )


def plan_rows(shape: ModelShape, layout: Layout) -> tuple[Row, ...]:
    """The per-process rows: weights, compute copy, gradients, AdamW, activations, framework, slack."""
    p, t = shape.params, shape.trainable
    e = DTYPE_BYTES[layout.precision]
    mixed = layout.precision != "fp32"
    fsdp = layout.strategy == "fsdp" and layout.world_size > 1
    n = layout.world_size if fsdp else 1
    split = f" / {n} processes (fsdp)" if fsdp else ""
    rows = [
        Row("weights", 4 * p // n, f"{p:,} params x 4 B (fp32{' master' if mixed else ''}){split}"),
        Row("gradients", 4 * t // n, f"{t:,} trainable x 4 B{split}"),
        Row("AdamW state", 8 * t // n, f"2 fp32 moments x {t:,}{split}"),
    ]
    if fsdp:
        unit = shape.largest_unit
        rows.append(Row("gathered unit", unit * (e + 4), f"largest shard group {unit:,} params + its grads"))
    elif mixed:
        rows.append(
            Row("compute copy", 2 * shape.linear_params, f"{layout.precision} casts of the linear weights")
        )
    rows.append(activation_row(shape, layout))
    slack = int(ALLOCATOR_SLACK * sum(r.bytes for r in rows))
    rows.append(Row("allocator slack", slack, f"{ALLOCATOR_SLACK:.0%} of the tensors above"))
    if layout.device == "cpu":
        rows.append(Row("framework", CPU_FRAMEWORK, "torch + transformers + Trainer RSS, measured"))
    else:
        rows.append(Row("framework", CUDA_CONTEXT, "CUDA context and workspaces, estimated"))
    return tuple(rows)


def make_plan(shape: ModelShape, layout: Layout, budget: int, budget_source: str) -> Plan:
    return Plan(shape, layout, plan_rows(shape, layout), budget, budget_source)


def format_plan(plan: Plan) -> str:
    """The table: one row per kind of memory, the total per process and against the budget."""
    s, lay = plan.shape, plan.layout
    head = (
        f"memory plan: {s.name} (h={s.hidden}, layers={s.layers}, heads={s.heads}, i={s.intermediate}, "
        f"vocab={s.vocab}, {s.params:,} params)\n"
        f"  {lay.device}, {lay.precision}, {lay.strategy} x {lay.world_size} process(es), "
        f"batch {lay.batch_size} x {lay.max_length} tokens, "
        f"checkpointing {'on' if lay.checkpointing else 'off'}"
    )
    lines = [head, f"  {'row':<16}{'MiB':>9}  how"]
    lines += [f"  {r.name:<16}{r.bytes / MIB:>9.1f}  {r.how}" for r in plan.rows]
    lines.append(f"  {'per process':<16}{plan.per_process / MIB:>9.1f}  {gib(plan.per_process)}")
    if plan.needed != plan.per_process:
        share = f"{gib(plan.needed)}: {lay.per_node} processes share its RAM"
        lines.append(f"  {'this machine':<16}{plan.needed / MIB:>9.1f}  {share}")
    verdict = "fits" if plan.fits else "DOES NOT FIT"
    lines.append(f"  budget {gib(plan.budget)} ({plan.budget_source}): {verdict}")
    return "\n".join(lines)


def _candidates(lay: Layout) -> list[tuple[str, Layout]]:
    """Single changes that lower the peak, each named as the params key to set."""
    out: list[tuple[str, Layout]] = []
    if not lay.checkpointing and not lay.frozen_body:
        out.append(("finetune.activation_checkpointing: true", dataclasses.replace(lay, checkpointing=True)))
    for b in range(lay.batch_size - 1, 0, -1):
        acc = -(-lay.batch_size // b)
        out.append(
            (
                f"finetune.batch_size: {b} (with gradient_accumulation_steps: {acc} for the same effective batch)",
                dataclasses.replace(lay, batch_size=b),
            )
        )
    if lay.precision == "fp32" and lay.device == "cuda":
        out.append(("finetune.precision: bf16", dataclasses.replace(lay, precision="bf16")))
    if lay.precision == "fp32" and lay.device == "cpu":
        out.append(
            (
                "finetune.precision: bf16 (on a CPU with native bf16)",
                dataclasses.replace(lay, precision="bf16"),
            )
        )
    if lay.device == "cuda":
        for n in (2, 4, 8):
            if n > lay.world_size:
                fs = dataclasses.replace(lay, strategy="fsdp", world_size=n, per_node=n)
                out.append((f"finetune.strategy: fsdp with num_processes: {n} (one GPU each)", fs))
    for s in (256, 128, 64):
        if s < lay.max_length:
            out.append((f"tokenize.max_length: {s}", dataclasses.replace(lay, max_length=s)))
    return out


def fixes(plan: Plan) -> list[str]:
    """The single changes that make the plan fit, each with its planned peak; the first batch size that
    fits stands for the smaller ones."""
    found: list[str] = []
    batch_named = False
    for label, lay in _candidates(plan.layout):
        alt = make_plan(plan.shape, lay, plan.budget, plan.budget_source)
        if not alt.fits or (label.startswith("finetune.batch_size") and batch_named):
            continue
        batch_named = batch_named or label.startswith("finetune.batch_size")
        found.append(f"{label}: {gib(alt.needed)}")
    return found


def refusal(plan: Plan) -> str:
    """One paragraph: what does not fit, by how much, and the changes (params.yaml keys) that would fit."""
    found = fixes(plan)
    if found:
        todo = "Change one of these in params.yaml (planned peak after the change): " + "; ".join(found) + "."
    else:
        todo = (
            "No single change fits: combine finetune.activation_checkpointing: true with a smaller "
            "finetune.batch_size and tokenize.max_length, or use a machine with more memory."
        )
    where = "per GPU" if plan.layout.device == "cuda" else "in this machine's RAM"
    return (
        f"finetune needs about {gib(plan.needed)} {where} but the budget is {gib(plan.budget)} "
        f"({plan.budget_source}). {todo} The table above says where the memory goes (docs/training.md, "
        f'"Reading the memory plan"); {BUDGET_ENV}=off skips this check.'
    )


def layout_for(recipe: Recipe, device: str, precision: str, max_length: int) -> Layout:
    """The Layout of a finetune recipe (params), on `device` with `precision` already resolved."""
    return Layout(
        device=device,
        precision=precision,
        batch_size=recipe.batch_size,
        max_length=max_length,
        strategy=recipe.strategy,
        world_size=recipe.num_processes * recipe.num_nodes,
        per_node=recipe.num_processes,
        checkpointing=recipe.activation_checkpointing or recipe.gradient_checkpointing,
        frozen_body=recipe.freeze == "encoder",
    )


# ------------------------------------------------------------------- reading the checkpoint and machine


def model_shape(
    ref: str, num_labels: int, pooling: str = "mean", freeze: str = "none", trust_remote_code: bool = False
) -> ModelShape:
    """The shape of the classifier the finetune stage builds from `ref`: config.json read, the model
    built on the meta device (no weights, no memory) and its parameters counted exactly."""
    config = AutoConfig.from_pretrained(resolve_model(ref), trust_remote_code=trust_remote_code)
    hidden = int(config.hidden_size)
    with torch.device("meta"):
        if pooling == "mean":  # the body without its [CLS] pooler, then dropout + linear (serving/meanpool)
            model = AutoModel.from_config(config, trust_remote_code=trust_remote_code)  # type: ignore[no-untyped-call]
            if isinstance(getattr(model, "pooler", None), nn.Module):
                model.pooler = None  # what add_pooling_layer=False builds
            head = hidden * num_labels + num_labels
            extra_linear = hidden * num_labels  # the classifier, outside the body built here
        else:
            config.num_labels = num_labels
            model = AutoModelForSequenceClassification.from_config(  # type: ignore[no-untyped-call]
                config, trust_remote_code=trust_remote_code
            )
            head = sum(p.numel() for p in model.parameters()) - sum(
                p.numel() for p in model.base_model.parameters()
            )
            extra_linear = 0
    outside = head if pooling == "mean" else 0  # parameters of the model that `model` does not hold
    total = sum(p.numel() for p in model.parameters()) + outside
    blocks = transformer_blocks(model)  # FSDP's shard groups: each block, then the rest of the model
    n_blocks = len(blocks) if blocks is not None else 0
    block = sum(p.numel() for p in blocks[0].parameters()) if blocks is not None else 0
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear)) + extra_linear
    return ModelShape(
        name=ref,
        hidden=hidden,
        layers=int(config.num_hidden_layers),
        heads=int(config.num_attention_heads),
        intermediate=int(getattr(config, "intermediate_size", None) or 4 * hidden),
        vocab=int(config.vocab_size),
        params=total,
        trainable=head if freeze == "encoder" else total,
        linear_params=linear,
        largest_unit=max(block, total - n_blocks * block),
    )


def _meminfo_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Memory left under a cgroup v2 limit (containers), None when there is no limit."""
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None


def memory_budget(device: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Bytes the run may use and where that figure comes from: FTPIPE_MEMORY_BUDGET_GB when set, else one
    GPU's total memory, else this machine's available RAM (under a container's limit, if lower)."""
    env = dict(os.environ) if env is None else env
    raw = env.get(BUDGET_ENV, "").strip()
    if raw.lower() == "off":
        return 2**62, f"{BUDGET_ENV}=off"
    if raw:
        try:
            gb = float(raw)
        except ValueError:
            gb = -1.0
        if not (gb > 0 and math.isfinite(gb)):  # inf: int() of it overflowed
            raise MemoryPlanError(
                f"{BUDGET_ENV} = {raw[:40]!r} is not a positive number of GiB; set it to e.g. 8, or to `off` to "
                "skip the memory check."
            )
        return int(gb * GIB), f"{BUDGET_ENV}={raw}"
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return int(props.total_memory), f"total memory of {props.name}"
    found = [x for x in (_meminfo_available(), _cgroup_room()) if x is not None]
    if not found:
        pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return int(pages), "available RAM (sysconf)"
    return min(found), "available RAM of this machine"


def num_labels_of(labels: Path) -> int:
    """Classes in labels.json; 2 (the head's size hardly matters) when it is not written yet, or not one."""
    try:
        return len(read_label_names(labels))
    except (OSError, LabelMapError):
        return 2


def plan_run(
    recipe: Recipe,
    ref: str,
    trust_remote_code: bool,
    max_length: int,
    labels: Path,
    device: str,
    precision: str,
    budget: tuple[int, str] | None = None,
) -> Plan:
    """The plan of a finetune recipe on `device` in `precision`, against `budget` (bytes, where the figure
    comes from; default `memory_budget(device)`): what `ftpipe plan` prints and the stage checks."""
    shape = model_shape(ref, num_labels_of(labels), recipe.pooling, recipe.freeze, trust_remote_code)
    layout = layout_for(recipe, device, precision, max_length)
    return make_plan(shape, layout, *(budget or memory_budget(device)))


def require_fit(
    recipe: Recipe,
    ref: str,
    trust_remote_code: bool,
    max_length: int,
    labels: Path,
    device: str,
    precision: str,
    log: logging.Logger,
) -> Plan:
    """Plan the run and log the table; raise MemoryPlanError (the table and the fixes) when it won't fit."""
    plan = plan_run(recipe, ref, trust_remote_code, max_length, labels, device, precision)
    table = format_plan(plan)
    if not plan.fits:
        raise MemoryPlanError(f"{table}\n{refusal(plan)}")
    log.info("%s", table)
    return plan
