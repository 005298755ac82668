"""The `finetune` section of params.yaml (the training recipe) and the base checkpoint it starts from."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stages.config.params import StageParams
from stages.config.tokenize import TokenizeParams


class FinetuneParams(StageParams):
    """The `finetune` section of params.yaml."""

    epochs: int = Field(
        5, ge=1, description="upper bound; early stopping on the validation `metric` may end sooner"
    )
    learning_rate: float = Field(1e-4, gt=0.0, description="peak learning rate (AdamW)")
    batch_size: int = Field(
        16, ge=1, description="per process; effective batch = batch_size x num_processes x accumulation"
    )
    eval_batch_size: int = Field(64, ge=1, description="batch size of the validation pass")
    gradient_accumulation_steps: int = Field(1, ge=1, description="batches summed before each optimizer step")
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay")
    warmup: float = Field(
        0.1, ge=0.0, description="a ratio of all steps if < 1, else a whole number of steps"
    )
    scheduler: Literal[
        "linear",
        "cosine",
        "cosine_with_restarts",
        "polynomial",
        "constant",
        "constant_with_warmup",
        "inverse_sqrt",
    ] = Field("linear", description="learning-rate schedule after warmup (transformers' names)")
    max_grad_norm: float = Field(1.0, ge=0.0, description="gradient clipping norm; 0 disables clipping")
    seed: int = Field(42, description="seed of initialisation, shuffling and dropout")
    metric: Literal["macro_f1", "accuracy", "weighted_f1", "micro_f1"] = Field(
        "macro_f1",
        description="validation metric for early stopping and the best epoch (micro_f1: label.task "
        "multi_label only; there `accuracy` is subset accuracy, the whole set right)",
    )
    patience: int = Field(
        2, ge=0, description="epochs without improvement before stopping; 0 = never stop early"
    )
    class_weights: Literal["none", "balanced"] = Field(
        "none",
        description="none = plain cross-entropy | balanced = cross-entropy weighted by sklearn's "
        "'balanced' class weights from the train split (rare classes count more; probabilities shift "
        "toward them, so calibration usually worsens: docs/training.md); under label.task multi_label, "
        "balanced gives each label's positives the weight negatives/positives of the train split in the "
        "binary cross-entropy",
    )
    freeze: Literal["none", "encoder"] = Field(
        "none", description="none = full-parameter fine-tuning | encoder = train the classification head only"
    )
    pooling: Literal["mean", "native"] = Field(
        "mean",
        description="mean of the last hidden states (how MiniLM-style embedding models are read) | "
        "native = the architecture's own classification head",
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="auto (bf16 where native: a CUDA device with bf16, a CPU with avx512_bf16/amx_bf16; "
        "else fp32) | fp32 | bf16 | fp16 (CUDA only)",
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in the backward pass: less memory, about 20% slower"
    )
    max_train_samples: int | None = Field(
        None, ge=1, description="debug knob: train on a seeded sample of N rows"
    )
    num_processes: int = Field(
        1, ge=1, description="> 1 relaunches the stage under torchrun (gloo on CPU, nccl on GPUs); per node"
    )
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="ddp = every process holds the whole model | fsdp = FSDP2 shards parameters, gradients "
        "and optimizer state across the processes, one shard group per transformer block, sharded "
        "checkpoints (needs num_processes x num_nodes >= 2)",
    )
    activation_checkpointing: bool = Field(
        False,
        description="recompute each transformer block's activations in the backward pass (FSDP's own "
        "per-block wrapper under fsdp; the same as gradient_checkpointing under ddp)",
    )
    num_nodes: int = Field(
        1, ge=1, description="machines in one multi-node run; > 1 needs rdzv_endpoint (docs/training.md)"
    )
    rdzv_endpoint: str | None = Field(
        None,
        description="host:port every node reaches for torchrun's c10d rendezvous (multi-node runs), "
        "e.g. node0.internal:29400",
    )
    rdzv_id: str = Field(
        "ftpipe-finetune", min_length=1, description="rendezvous id: the same on every node of one run"
    )

    def record(self) -> dict[str, Any]:
        """The params as saved beside the model and hashed for resumes; `class_weights` only when set, so
        the records of an unweighted run keep the bytes they had before the key existed."""
        d = self.model_dump()
        if self.class_weights == "none":
            del d["class_weights"]
        return d

    @field_validator("warmup")
    @classmethod
    def _warmup(cls, v: float) -> float:
        if v >= 1 and v != int(v):
            raise ValueError("use a ratio in [0, 1) or a whole number of steps")
        return v

    @field_validator("rdzv_endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None:
            host, sep, port = v.rpartition(":")
            if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
                raise ValueError("use host:port, e.g. node0.internal:29400")
        return v

    @model_validator(mode="after")
    def _layout(self) -> FinetuneParams:
        if self.num_nodes > 1 and self.rdzv_endpoint is None:
            raise ValueError(
                f"num_nodes = {self.num_nodes} needs rdzv_endpoint: the host:port of the first node, "
                "the same on every node (docs/training.md, Multi-node)"
            )
        if self.strategy == "fsdp" and self.num_processes * self.num_nodes < 2:
            raise ValueError(
                "strategy = fsdp shards the model across processes: set num_processes >= 2 (or "
                "num_nodes >= 2), or use strategy: ddp for one process"
            )
        return self


class BaseModelRef(BaseModel):
    """The base checkpoint: `tokenize.model` and `tokenize.trust_remote_code`, taken from the tokenize
    section (`from_tokenize`), so the model is the one the data was tokenized with."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(min_length=1)
    trust_remote_code: bool = False

    @classmethod
    def from_tokenize(cls, t: TokenizeParams) -> BaseModelRef:
        return cls(model=t.model, trust_remote_code=t.trust_remote_code)
