"""The `label` section of params.yaml: which labels are kept, how they are folded, how rows are split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stages.config.params import StageParams


class LabelParams(StageParams):
    """The `label` section of params.yaml."""

    labels: list[str] | None = Field(
        None,
        description="keep only these (canonical) labels, e.g. [business, politics]; rows with other labels are quarantined; null keeps all",
    )
    aliases: dict[str, str] = Field(
        default_factory=dict, description="alias -> canonical label, e.g. {sport: sports}"
    )
    lowercase: bool = Field(True, description="fold label case before matching labels and aliases")
    validation_size: float = Field(
        0.15, gt=0.0, lt=1.0, description="share of rows (by group) for validation"
    )
    test_size: float = Field(0.15, gt=0.0, lt=1.0, description="share of rows (by group) for test")
    min_class_rows: int = Field(
        10,
        ge=3,
        description="fewest rows a class needs to be stratified (multi_label: a label with fewer rows is "
        "removed from the sets, with its reason in the quarantine)",
    )
    split: Literal["stable", "random"] = Field(
        "stable",
        description="stable: a group's side is a keyed hash of its key and the seed (growing data moves no row) | random: seeded train_test_split",
    )
    seed: int = Field(42, description="seed of the split (the hash key under `stable`)")
    task: Literal["single_label", "multi_label"] = Field(
        "single_label",
        description="single_label: one label per text | multi_label: a set of labels per text (ingest reads "
        "lists, `ingest.label_separator` or `ingest.label_columns`; docs/your-data.md)",
    )

    @model_validator(mode="after")
    def _sizes(self) -> LabelParams:
        if self.validation_size + self.test_size >= 0.9:
            raise ValueError(
                f"validation_size + test_size = {self.validation_size + self.test_size:.2f} leaves "
                "under 10% for training; keep their sum below 0.9"
            )
        return self
