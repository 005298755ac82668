"""FSDP2 for the finetune stage (`finetune.strategy: fsdp`): what to shard, and the model gathered back.

    args = TrainingArguments(..., fsdp=True, fsdp_config=fsdp_config(model, activation_checkpointing=False))
    trainer = FinetuneTrainer(log, model=model, args=args, ...)   # accelerate applies `fully_shard`
    state = full_state_dict(trainer.model_wrapped)                # on every rank: a collective
    if rank == 0: model.save_pretrained(out, state_dict=state)    # today's single-folder format

The Hugging Face `Trainer` does the sharding through accelerate's FSDP2 integration (`fsdp_version` 2,
which accelerate 1.15 and transformers 5 support on the CPU with gloo as on GPUs with nccl):
`fully_shard` on each transformer block (each encoder layer: the class of the model's repeated layers,
`block_class_names`), on the embeddings, then on the root, so parameters, gradients and the AdamW state
are split across the processes. Checkpoints are sharded (`SHARDED_STATE_DICT`: each rank writes its own
shard with `torch.distributed.checkpoint`, DCP, into `checkpoint-N/pytorch_model_fsdp_0/` and
`optimizer_0/`), and a resume reads them back on the same number of processes. On GPUs in bf16 the
parameters are cast to bf16 for compute and the gradients reduced in fp32 (`bf16_policy`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

FSDP_MODEL_DIR = "pytorch_model_fsdp_0"  # what accelerate's save_fsdp_model writes (DCP) into a checkpoint
FSDP_OPTIMIZER_DIR = "optimizer_0"
DCP_METADATA = ".metadata"  # DCP writes it last, after every rank's shard: a finished sharded save


def transformer_blocks(model: nn.Module) -> nn.ModuleList | None:
    """The model's transformer blocks: the longest `nn.ModuleList` whose members all share one class (BERT's
    encoder layers, GPT-2's blocks; the first such list on a tie). None when the model has no such list.

    What FSDP shards one by one here and what the memory plan (memplan.py) gathers whole."""
    best: nn.ModuleList | None = None
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) > (len(best) if best is not None else 0):
            if len({type(m) for m in module}) == 1:
                best = module
    return best


def block_class_names(model: nn.Module) -> list[str]:
    """The class of the model's transformer blocks (BertLayer, GPT2Block, ...), for accelerate's
    `transformer_layer_cls_to_wrap`. Empty when the model has no such list."""
    blocks = transformer_blocks(model)
    return [type(blocks[0]).__name__] if blocks is not None else []


def fsdp_config(model: nn.Module, activation_checkpointing: bool) -> dict[str, Any]:
    """`TrainingArguments.fsdp_config` for FSDP2: one shard group per transformer block, sharded (DCP)
    checkpoints, and per-block activation checkpointing when asked."""
    blocks = block_class_names(model)
    config: dict[str, Any] = {
        "version": 2,
        "reshard_after_forward": True,
        "state_dict_type": "SHARDED_STATE_DICT",
        "activation_checkpointing": activation_checkpointing,
    }
    if blocks:
        config["auto_wrap_policy"] = "TRANSFORMER_BASED_WRAP"
        config["transformer_layer_cls_to_wrap"] = blocks
    return config


def bf16_policy() -> Any:
    """bf16 parameters for compute, gradients reduced in fp32 (the fp32 master weights stay sharded)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)


def is_sharded(model: nn.Module) -> bool:
    """True when `fully_shard` has been applied to `model` (its parameters are DTensor shards)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's state dict, gathered from every rank's shard into CPU memory on rank 0 (the other
    ranks get an empty dict). A collective: every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state: dict[str, torch.Tensor] = dict(get_model_state_dict(model, options=options))  # type: ignore[arg-type]
    return state


def sharded_checkpoint_complete(folder: Any) -> bool:
    """A Trainer checkpoint written under FSDP holds both DCP folders, each finished (its .metadata)."""
    return all((folder / d / DCP_METADATA).is_file() for d in (FSDP_MODEL_DIR, FSDP_OPTIMIZER_DIR))


def unsharded_copy(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """A plain (never sharded) instance of `model`'s own class holding `state`, for `save_pretrained`.

    `fully_shard` swaps the model's class for a generated `FSDP<Name>` subclass; saving from a plain
    instance keeps the folder exactly what a DDP run writes (config, code files, safetensors)."""
    from torch.distributed.fsdp import FSDPModule

    cls = next(c for c in type(model).__mro__ if not issubclass(c, FSDPModule))
    plain: nn.Module = cls(model.config)  # type: ignore[call-arg,assignment]
    plain.load_state_dict(state, strict=True)
    return plain.eval()


def enable_fsdp_on_cpu(accelerator: Any, plugin_args: dict[str, Any]) -> None:
    """Turn on accelerate's FSDP2 path for a multi-process CPU (gloo) run.

    accelerate 1.15 enables FSDP only for accelerator devices (MULTI_GPU and kin) and silently falls back
    to DDP on MULTI_CPU, although `fully_shard` itself works over a gloo CPU mesh. Setting the plugin and
    the distributed type here runs the same FSDP2 code (sharding, DCP checkpoints, gathered save) on the
    CPU as on GPUs, so the CPU tests exercise the GPU path."""
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = accelerator.state
    if state.distributed_type != DistributedType.MULTI_CPU:
        raise RuntimeError(
            f"finetune.strategy = fsdp: accelerate chose {state.distributed_type} and no FSDP; expected FSDP on "
            "GPUs or a multi-process CPU run. Check the accelerate version (1.15 was tested)."
        )
    plugin = FullyShardedDataParallelPlugin(**plugin_args)
    if state.mixed_precision != "no":
        plugin.set_mixed_precision(state.mixed_precision)
    state.fsdp_plugin = plugin
    state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    AcceleratorState._shared_state["distributed_type"] = DistributedType.FSDP
