"""dropout: what dropout's random masks cost a CPU training step, and what a cheaper mask would save.

A profile of a full-parameter step of the packaged MiniLM (batch 16 x 128 tokens, fp32, 2 threads) puts
`aten::bernoulli_` at about 16% of the step: torch draws one random number per element for each
dropout mask (the attention probabilities alone are 16 x 12 x 128 x 128 per layer). This times the
same steps three ways, side by side:

- `torch`: the model as finetune trains it (dropout 0.1 everywhere, attention through SDPA);
- `fast_masks`: the same dropout probabilities, masks cut from 64-bit random words (four 16-bit draws per
  word, so p is exact to 1/65,536) in a module swapped for each `nn.Dropout` and a registered attention
  function that applies the same mask to the attention probabilities (eager attention while training);
- `no_dropout`: every dropout probability 0, the upper bound of any mask speed-up (and a different recipe).

`fast_masks` keeps the recipe but not the random stream, so a model trained with it differs from the
committed one as a different seed's would; adopting it needs `make bench-accuracy` over seeds 1-5 first.
Nothing in finetune uses it yet.

    .venv/bin/python -m bench.dropout [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
from torch import nn

from bench.workloads import train_step

BATCH, SEQ = 16, 128
ATTENTION = "ftpipe_fast_masks"


def keep_scale(like: torch.Tensor, p: float) -> torch.Tensor:
    """A dropout multiplier shaped like `like`: 0 with probability p (to 1/65,536), else 1 / (1 - p)."""
    n = like.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=like.device).random_(-(2**63), None)
    draws = words.view(torch.int16)[:n].view(like.shape)  # uniform over [-32768, 32767]
    return (draws >= -32768 + round(p * 65536)).to(like.dtype).mul_(1.0 / (1.0 - p))


class FastDropout(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * keep_scale(x, self.p) if self.training and self.p > 0 else x


def fast_mask_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Eager attention with `keep_scale` masks while training; SDPA otherwise (the mask is SDPA's)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not module.training or dropout == 0:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    scores = torch.matmul(query, key.transpose(2, 3)) * (
        query.size(-1) ** -0.5 if scaling is None else scaling
    )
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1)
    probs = probs * keep_scale(probs, dropout)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs


def use_fast_masks(model: Any) -> None:
    """Swap every nn.Dropout of `model` for FastDropout and route its attention through fast_mask_attention."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, fast_mask_attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p).train(child.training))
    model.set_attn_implementation(ATTENTION)


def samples_per_s(kind: str, steps: int) -> float:
    off = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "classifier_dropout": 0.0}
    prepare = _with_fast_masks if kind == "fast_masks" else None
    _, step = train_step("fp32", BATCH, SEQ, prepare, **(off if kind == "no_dropout" else {}))
    step()
    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * BATCH / (time.perf_counter() - t0)


def _with_fast_masks(model: Any) -> Any:
    use_fast_masks(model)
    return model


def bench_dropout(steps: int = 10) -> dict[str, Any]:
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "batch": BATCH, "seq": SEQ}
    for kind in ("torch", "fast_masks", "no_dropout"):
        out[f"{kind}_samples_per_s"] = round(samples_per_s(kind, steps), 2)
    for kind in ("fast_masks", "no_dropout"):
        out[f"{kind}_speedup"] = round(out[f"{kind}_samples_per_s"] / out["torch_samples_per_s"], 3)
    out["pass"] = True  # a measurement for a recipe decision, no target
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    print(json.dumps(bench_dropout(ap.parse_args(argv).steps)))


if __name__ == "__main__":
    main()
