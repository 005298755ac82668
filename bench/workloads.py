"""What several benchmarks time: the packaged classifier, one training step of it, a square matmul.

`bench.run` (train_step, efficiency, inference's peak), `bench.dropout`, `bench.compile` and
`bench.inference` build their work here, so each measures the same thing. torch is imported inside the
functions: importing this module stays free, so a benchmark's `--help` does not wait for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stages.model.resolve import resolve_model


def packaged_classifier(**config: Any) -> Any:
    """The packaged MiniLM with a fresh 5-class head, seeded (`config` goes to its config, e.g. dropout)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(
        resolve_model("builtin:minilm-l6"), num_labels=5, **config
    )


def train_step(
    precision: str, batch: int, seq: int, prepare: Callable[[Any], Any] | None = None, **config: Any
) -> tuple[Any, Callable[[], None]]:
    """The packaged classifier in training mode and one full-parameter AdamW step on random ids, fp32 or
    bf16 autocast; `prepare` turns the model into what the step calls (e.g. `torch.compile`)."""
    import torch

    model = packaged_classifier(**config).train()
    run = prepare(model) if prepare else model
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    ids = torch.randint(1000, 20000, (batch, seq))
    labels = torch.randint(0, 5, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = run(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    return model, step


def matmul_peak(dtype_name: str, n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of square matmuls in `dtype_name` (fp32 or bf16) with this process's threads."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9
