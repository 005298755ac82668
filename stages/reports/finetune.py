"""reports/finetune.json, written by `stages/finetune.py`: where and how the model trained, its best epoch.

The model card reads the device, the precision and why; the benchmarks read the rows, windows and epochs.
Every key the stage writes is typed here; a key it may add later is kept as an extra.
"""

from __future__ import annotations

from stages.reports.base import ReportModel


class FinetuneReport(ReportModel):
    """reports/finetune.json, its keys in the order the stage builds them."""

    base_model: str  # tokenize.model, as written in params.yaml
    device: str  # cpu | cuda
    precision: str  # fp32 | bf16 | fp16, resolved (never auto)
    precision_reason: str  # why this precision: set by params, or what `auto` found
    num_processes: int
    strategy: str  # ddp | fsdp
    freeze: str  # none | encoder
    pooling: str  # mean | native
    train_rows: int
    validation_rows: int
    validation_windows: int
    windows_per_train_text: float
    epochs_run: int | float  # a whole epoch is written as an int
    stopped_early: bool
    best_epoch: int | float
    best_metric: str
    best_validation: dict[str, float]  # loss and the validation metrics of the kept epoch
    train_samples_per_s: float | None  # None when no step was timed
    train_runtime_s: float
    wall_time_s: float
    trainable_params: int
    total_params: int
    resumed_from: str | None  # the checkpoint this run resumed from
    class_weights: dict[str, float] | None = None  # class_weights: balanced only: the weight of each class
    positive_weights: dict[str, float] | None = (
        None  # label sets + balanced: each label's BCE positive weight
    )
    task: str | None = None  # multi_label only (label sets); absent for one label per text
    thresholds: dict[str, float] | None = None  # label sets: each label's threshold, tuned on validation
