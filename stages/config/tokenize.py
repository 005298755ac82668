"""The `tokenize` section's params class, shared because three stages read that section.

tokenize owns it; finetune reads `tokenize.model` and `tokenize.trust_remote_code` (the base checkpoint
must be the one the data was tokenized with); register reads `max_length`, `windows`, `truncation` and
`head_fraction` (the served model must read a text as the stage did). Each of them loads it the one way
a stage reads another stage's section (stages/config/params.py): `load_section("tokenize",
TokenizeParams, path)`, validated exactly as tokenize validates it, and lists the keys it uses in its
`dvc.yaml` params.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.config.params import StageParams


class TokenizeParams(StageParams):
    """The `tokenize` section of params.yaml."""

    model: str = Field(
        "builtin:minilm-l6",
        min_length=1,
        description="the base checkpoint: builtin:minilm-l6, a local folder, or a hub id",
    )
    max_length: int = Field(128, ge=8, le=32768, description="tokens per window, special tokens included")
    windows: int = Field(
        8,
        ge=1,
        le=64,
        description="most windows read per text (1 = one window); the prediction averages them",
    )
    truncation: Literal["head", "tail", "head+tail"] = Field(
        "head", description="what is kept of a text longer than the windows hold: head | tail | head+tail"
    )
    head_fraction: float = Field(0.25, gt=0.0, lt=1.0, description="share of head+tail kept from the start")
    batch_size: int = Field(256, ge=1, description="texts tokenized per batch")
    trust_remote_code: bool = Field(
        False, description="allow the checkpoint's own Python code (auto_map); only for checkpoints you trust"
    )
