"""The classifier finetune trains and saves: the base checkpoint with a fresh head, and its tokenizer.

    model, tok = load_model_and_tokenizer(BaseModelRef(model="builtin:minilm-l6"), names, "none", "mean")
    save_model(model, tok, Path("models/model"), resolved_params)   # safetensors + MANIFEST.sha256

The head reads the mean of the body's last hidden states (`pooling: mean`, stages/serving/meanpool.py)
or is the architecture's own (`native`); `freeze: encoder` trains the head alone.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from stages.config.finetune import BaseModelRef
from stages.core.io import atomic_dir, write_json
from stages.model.resolve import BUILTIN_MODELS, resolve_model
from stages.model.sharding import unsharded_copy
from stages.model.trainer import FinetuneError
from stages.serving.manifest import write_folder_manifest

PARAMS_FILE = "ftpipe_params.json"


def load_model_and_tokenizer(
    base: BaseModelRef, names: list[str], freeze: str, pooling: str = "mean", multi_label: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base checkpoint with a fresh classification head (fp32 master weights) and its tokenizer.

    `pooling` picks the head: `mean` reads the masked mean of the body's last hidden states
    (`stages/serving/meanpool.py`), `native` the architecture's own head (BERT's [CLS] pooler, a
    decoder's last token). Decoder-only models without a pad token get pad = eos (a last-token head
    reads the last non-pad token, so the model config must know the pad id). The tokenizer's own padding/truncation
    settings are dropped: inputs arrive pre-tokenized and the saved tokenizer must not pad every input.
    """
    from stages.serving.meanpool import MULTI_LABEL, MeanPoolForSequenceClassification

    path = resolve_model(base.model)
    tok = cast(
        PreTrainedTokenizerBase, AutoTokenizer.from_pretrained(path, trust_remote_code=base.trust_remote_code)
    )
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise FinetuneError(
                f"tokenize.model `{base.model}` has neither a pad nor an eos token, so batches cannot be padded; "
                "add a pad token to its tokenizer (tokenizer.add_special_tokens) and save it as a local folder."
            )
        tok.pad_token = tok.eos_token
    # how it was loaded (HF_HUB_OFFLINE sets local_files_only) is not part of the saved tokenizer
    tok.init_kwargs.pop("local_files_only", None)
    if getattr(tok, "is_fast", False):
        fast = cast(PreTrainedTokenizerFast, tok)
        fast.backend_tokenizer.no_padding()
        fast.backend_tokenizer.no_truncation()
    head = {
        "num_labels": len(names),
        "id2label": dict(enumerate(names)),
        "label2id": {n: i for i, n in enumerate(names)},
        # multi_label: one sigmoid per label and binary cross-entropy (native heads do the same for it)
        "problem_type": MULTI_LABEL if multi_label else "single_label_classification",
    }
    model: PreTrainedModel
    if pooling == "mean":
        model = MeanPoolForSequenceClassification.from_body(
            path, trust_remote_code=base.trust_remote_code, **head
        )
        model.base_model.config.pad_token_id = tok.pad_token_id  # type: ignore[union-attr]
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, trust_remote_code=base.trust_remote_code, dtype=torch.float32, **head
        )
    model.config.pad_token_id = tok.pad_token_id
    if freeze == "encoder":
        freeze_encoder(model)
    return model, tok


def set_head_bias(model: PreTrainedModel, bias: np.ndarray) -> bool:
    """Set the bias of the head's output layer (ftpipe's mean-pool head, or a native `classifier` /
    `score` / `classifier.out_proj` linear with one output per label); False when there is none to set."""
    head = getattr(model, "classifier", None) or getattr(model, "score", None)
    layer = getattr(head, "out_proj", head)
    n = int(model.config.num_labels or 0)
    if not isinstance(layer, nn.Linear) or layer.out_features != n or layer.bias is None or len(bias) != n:
        return False
    with torch.no_grad():
        layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype))
    return True


def freeze_encoder(model: PreTrainedModel) -> None:
    """Head-only training: freeze every parameter of the pre-trained body (`model.base_model`)."""
    body = model.base_model
    if body is model:
        raise FinetuneError(
            f"finetune.freeze = encoder: cannot tell the body of {type(model).__name__} from its head "
            "(no base_model_prefix); use freeze: none."
        )
    for param in body.parameters():
        param.requires_grad = False
    if not any(p.requires_grad for p in model.parameters()):
        raise FinetuneError("finetune.freeze = encoder left no trainable parameters; use freeze: none.")


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def model_source(ref: str) -> str:
    """Where the base weights came from: the package and version for `builtin:` refs, else the resolved ref."""
    if ref.startswith("builtin:"):
        package = BUILTIN_MODELS.get(ref.removeprefix("builtin:"), ("?", ""))[0].replace("_", "-")
        try:
            return f"{package}=={version(package)}"
        except PackageNotFoundError:
            return package
    return resolve_model(ref)


def save_model(
    model: nn.Module,
    tok: PreTrainedTokenizerBase,
    out: Path,
    resolved: dict[str, Any],
    state: dict[str, torch.Tensor] | None = None,
) -> None:
    """The best model (safetensors), its tokenizer and the resolved params, atomically, with the manifest
    (`MANIFEST.sha256`: the sha256 of every other file) that evaluate checks before loading it.

    `state` is the gathered full state dict of a sharded (fsdp) model: the same folder is written from a
    plain copy holding it."""
    if state is not None:
        model = unsharded_copy(model, state)
    with atomic_dir(out) as tmp:
        cast(PreTrainedModel, model).save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        write_json(tmp / PARAMS_FILE, resolved)
        write_folder_manifest(tmp)
