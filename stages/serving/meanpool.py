"""Mean-pooling sequence classification: any Hugging Face body, the masked mean of its last hidden states,
dropout, one linear layer.

`finetune.pooling: mean` builds this head instead of the architecture's own (BERT's [CLS] pooler, a
decoder's last token). Sentence-embedding checkpoints such as all-MiniLM-L6-v2 were trained to be read
by their mean, not by [CLS], so this head starts where their pre-training left off.

The saved folder is a normal `save_pretrained` folder that carries this file and an `auto_map`, the
Hugging Face convention for a custom architecture:
`AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)` loads it anywhere,
without the ftpipe repository. So this file must stand alone: torch and transformers only.

ftpipe itself never runs that copy: `load_classifier` builds the head from this module (the project's own
code, or the copy registered with the served model), whatever the folder's `auto_map` says, and never
lets the folder decide to trust its own code.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.configuration_utils import SubConfigSpec
from transformers.modeling_outputs import SequenceClassifierOutput

MODEL_TYPE = "ftpipe_mean_pool"
# a config's problem_type for a set of labels per text (label.task multi_label); textclf.py's MULTI_LABEL
MULTI_LABEL = "multi_label_classification"


@strict
class MeanPoolConfig(PreTrainedConfig):
    """The body's own config (`encoder`) plus the head's dropout; labels live on this config."""

    model_type = MODEL_TYPE
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder: PreTrainedConfig | dict | None = None
    classifier_dropout: float = 0.1
    pad_token_id: int | None = None


class MeanPoolForSequenceClassification(PreTrainedModel):
    """Body -> masked mean over tokens -> dropout -> linear; cross-entropy when labels are given (binary
    cross-entropy per label for a multi-label config, whose labels are 0/1 rows)."""

    config_class = MeanPoolConfig
    base_model_prefix = "encoder"  # `model.base_model` is the body (freeze: encoder freezes exactly it)
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: MeanPoolConfig, encoder: Any = None) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        body = cast(PreTrainedConfig, config.encoder)  # the sub-config machinery built it from a dict
        if encoder is None:
            encoder = AutoModel.from_config(body, **_no_pooler(body))
        self.encoder = encoder
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(int(body.hidden_size), cast(int, config.num_labels))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Only the head is initialised here; the body keeps its weights (pre-trained or loaded)."""
        if module is getattr(self, "classifier", None):
            std = getattr(self.config.encoder, "initializer_range", 0.02) or 0.02
            nn.init.normal_(module.weight, mean=0.0, std=std)
            nn.init.zeros_(module.bias)

    @classmethod
    def from_body(
        cls, path: str, trust_remote_code: bool = False, **config_kwargs: Any
    ) -> MeanPoolForSequenceClassification:
        """The pre-trained body at `path` with a fresh head; `config_kwargs` go to the config (labels, pad id)."""
        body_config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        # loaded as saved, [CLS] pooler included (a body built without it reports the checkpoint's pooler
        # weights as UNEXPECTED at every finetune), then the pooler this head never reads is dropped:
        # the saved folder has none, like the body `__init__` builds
        body = AutoModel.from_pretrained(
            path, config=body_config, trust_remote_code=trust_remote_code, dtype=torch.float32
        )
        if _no_pooler(body_config) and getattr(body, "pooler", None) is not None:
            body.pooler = None
        saved = body.config.to_dict()
        saved.pop("_name_or_path", None)  # a local path: the saved folder must not depend on where it ran
        config = MeanPoolConfig(encoder=saved, **config_kwargs)
        return cls(config, encoder=body)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        kwargs.pop("return_dict", None)
        kwargs.pop("num_items_in_batch", None)
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        hidden = out.last_hidden_state
        if attention_mask is None:
            pooled = hidden.mean(dim=1)
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None and self.config.problem_type == MULTI_LABEL:  # labels: (batch, k) of 0/1
            loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
        elif labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _no_pooler(body_config: PreTrainedConfig) -> dict[str, bool]:
    """BERT-like bodies build a [CLS] pooler this head never reads, unless told `add_pooling_layer=False`."""
    import inspect

    model_cls = AutoModel._model_mapping.get(type(body_config), None)
    takes_flag = (
        model_cls is not None and "add_pooling_layer" in inspect.signature(model_cls.__init__).parameters  # type: ignore[misc]
    )
    return {"add_pooling_layer": False} if takes_flag else {}


def load_classifier(folder: str, trust_remote_code: bool = False, **kwargs: Any) -> PreTrainedModel:
    """The sequence classifier saved in `folder`; a mean-pool model is built from this module's classes.

    The folder's own code (its `meanpool.py` copy, any `auto_map`) never runs for a mean-pool model; for
    another architecture, `trust_remote_code` comes from the caller (the project's params), never from a
    file inside the folder.
    """
    import json
    from pathlib import Path

    from transformers import AutoModelForSequenceClassification

    try:
        model_type = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{folder}/config.json cannot be read ({exc}); the model folder is incomplete."
        ) from None
    model: PreTrainedModel
    if model_type == MODEL_TYPE:
        register_auto_classes()  # so a later look at config.json (a tokenizer's) knows the type too
        model = MeanPoolForSequenceClassification.from_pretrained(folder, **kwargs)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, trust_remote_code=trust_remote_code, **kwargs
        )
    return model


def load_tokenizer(folder: str, trust_remote_code: bool = False) -> Any:
    """The tokenizer saved in `folder`. `AutoTokenizer` reads config.json to pick a class: for a mean-pool
    folder the type is registered first, else transformers takes `ftpipe_mean_pool` for unknown custom code
    and warns that the config's model type does not match (it then falls back to a bare config)."""
    import json
    from pathlib import Path

    from transformers import AutoTokenizer

    config = Path(folder) / "config.json"
    if config.is_file() and json.loads(config.read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE:
        register_auto_classes()
    return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)


def register_auto_classes() -> None:
    """Let `AutoConfig`/`AutoModelForSequenceClassification` load saved folders in this process without
    `trust_remote_code` (idempotent; not run at import, because this file also runs as the folder's own code)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if MODEL_TYPE not in CONFIG_MAPPING:
        AutoConfig.register(MODEL_TYPE, MeanPoolConfig)
        AutoModelForSequenceClassification.register(MeanPoolConfig, MeanPoolForSequenceClassification)


# save_pretrained copies this file into the folder and writes the `auto_map` that points at these classes
MeanPoolConfig.register_for_auto_class()
MeanPoolForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
