"""The `label` section's params class and the label fold, shared by label and clean.

label canonicalises every row's label with `canonical` (whitespace and, with `label.lowercase`, case
folded, then mapped through `label.aliases`); clean judges two copies of one text to conflict only when
their labels still differ after this same fold, so "Sport" and "sport" on one text are a duplicate, not a
conflict. clean reads the section the one way a stage reads another's (stages/config/params.py):
`load_section("label", LabelParams, path)`, tracking `label.lowercase` and `label.aliases` in dvc.yaml.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from stages.config.params import StageParams


class LabelParams(StageParams):
    """The `label` section of params.yaml."""

    labels: list[str] | None = Field(None, description="keep only these (canonical) labels; all if unset")
    aliases: dict[str, str] = Field(default_factory=dict, description="alias -> canonical label")
    lowercase: bool = True
    validation_size: float = Field(0.15, gt=0.0, lt=1.0)
    test_size: float = Field(0.15, gt=0.0, lt=1.0)
    min_class_rows: int = Field(10, ge=3, description="fewest rows a class needs to be stratified")
    split: Literal["stable", "random"] = Field(
        "stable", description="stable: a group's side is a keyed hash of its key; random: train_test_split"
    )
    seed: int = 42

    @model_validator(mode="after")
    def _sizes(self) -> LabelParams:
        if self.validation_size + self.test_size >= 0.9:
            raise ValueError(
                f"validation_size + test_size = {self.validation_size + self.test_size:.2f} leaves "
                "under 10% for training; keep their sum below 0.9"
            )
        return self


_WS = re.compile(r"\s+")


def canonical(label: str, p: LabelParams) -> str:
    """Fold whitespace (and case), then map through the aliases (whose keys are folded the same way)."""
    folded = _WS.sub(" ", str(label)).strip()
    if p.lowercase:
        folded = folded.lower()
    aliases = {
        _WS.sub(" ", k).strip().lower() if p.lowercase else _WS.sub(" ", k).strip(): v
        for k, v in p.aliases.items()
    }
    return aliases.get(folded, folded)
