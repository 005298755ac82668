"""What the finetune stage adds to transformers' `Trainer`: a NaN guard, throughput and progress lines.

    trainer = FinetuneTrainer(log, model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds, ...)
    trainer.train()
    trainer.progress.samples, trainer.progress.seconds   # for the report's samples/s

`FinetuneTrainer` stops on a NaN or infinite loss (`NonFiniteLossError`, naming the step), counts the
samples and the seconds spent inside optimizer steps (`Progress`: pure training throughput, data loading
and evaluation excluded), logs about four lines an epoch and four a validation pass with the time left,
and tells a windowed training set which epoch starts (`EpochWindows`), so it draws that epoch's windows.
Given `class_weights` (one per class id, `finetune.class_weights: balanced`), its loss is the weighted
cross-entropy, in training and in validation alike; for label sets (`multi_label`) they are the positive
weight of each label in the binary cross-entropy.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from stages.model.sharding import bf16_policy, enable_fsdp_on_cpu


class FinetuneError(RuntimeError):
    """Fine-tuning cannot go on; the message says why and what to change."""


class NonFiniteLossError(FinetuneError):
    """The training loss became NaN or infinite."""


def format_duration(seconds: float) -> str:
    """A short duration for progress lines: 45s, 3m05s, 1h02m."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress(TrainerCallback):
    """Seconds inside optimizer steps (data loading and evaluation excluded) for samples/s, and a log line
    about 4x an epoch and 4x a validation pass with the time left (ETA), so no minute passes silently."""

    def __init__(self, eval_windows: int, log: logging.Logger) -> None:
        self.seconds = 0.0
        self.samples = 0  # seen by this process in this call
        self._log = log
        self._eval_windows = eval_windows  # windows per validation pass
        self._t0 = 0.0
        self._every = 1
        self._begin = 0.0  # wall clock at the start of this call
        self._first_step = 0  # global step at the start of this call (a resume starts later)
        self._eval_wall = 0.0  # wall seconds spent validating so far
        self._eval_last = 0.0  # the last validation pass, wall seconds
        self._eval_start = 0.0
        self._eval_batches = 0
        self._evals_done = 0
        self._epoch_start = 0.0

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self._every = max(1, round(state.max_steps / max(1.0, 4 * args.num_train_epochs)))
        self._begin = time.perf_counter()
        self._first_step = state.global_step
        self._evals_done = int(state.epoch or 0)  # one validation per epoch already behind a resume

    def _eta(self, args: TrainingArguments, state: TrainerState, in_eval: float = 0.0) -> float:
        """Seconds left: the remaining steps at this call's wall time per step, plus the validation
        passes still due (one per epoch) at the last pass's duration, or a third of a training step per
        window before the first one; early stopping can only make it shorter."""
        steps = state.global_step - self._first_step
        train_wall = time.perf_counter() - self._begin - self._eval_wall - in_eval
        per_step = train_wall / steps if steps else 0.0
        evals_left = max(0, int(np.ceil(args.num_train_epochs)) - self._evals_done)
        per_eval = self._eval_last
        if not per_eval and self.samples:
            per_eval = self.seconds / self.samples / 3 * self._eval_windows
        return float((state.max_steps - state.global_step) * per_step + evals_left * per_eval - in_eval)

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self._t0 = time.perf_counter()

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self.seconds += time.perf_counter() - self._t0
        if state.is_world_process_zero and state.global_step % self._every == 0:
            rate = self.samples * args.world_size / self.seconds if self.seconds else 0.0
            self._log.info(
                "step %d/%d (epoch %.2f): %.1f samples/s, ETA %s",
                state.global_step,
                state.max_steps,
                state.epoch or 0.0,
                rate,
                format_duration(self._eta(args, state)),
            )

    def on_prediction_step(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        eval_dataloader: Any = None,
        **kw: Any,
    ) -> None:
        if self._eval_batches == 0:
            self._eval_start = time.perf_counter()
        self._eval_batches += 1
        total = len(eval_dataloader) if eval_dataloader is not None else 0
        every = max(1, round(total / 4))
        if state.is_world_process_zero and total and self._eval_batches % every == 0:
            spent = time.perf_counter() - self._eval_start
            self._log.info(
                "validation after epoch %.0f: batch %d/%d, %s left, ETA %s",
                state.epoch or 0.0,
                self._eval_batches,
                total,
                format_duration(spent / self._eval_batches * (total - self._eval_batches)),
                format_duration(self._eta(args, state, in_eval=spent)),
            )

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self._epoch_start = time.perf_counter()

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if self._eval_batches:
            self._eval_last = time.perf_counter() - self._eval_start
            self._eval_wall += self._eval_last
        self._eval_batches = 0
        self._evals_done += 1
        if state.is_world_process_zero:
            self._epoch_line(args, state, kw.get("metrics") or {})

    def _epoch_line(self, args: TrainingArguments, state: TrainerState, metrics: dict[str, float]) -> None:
        """One line per epoch (the quiet `ftpipe run` shows it: flows/runner.py's SHOWN_WHEN_QUIET)."""
        metric = (args.metric_for_best_model or "loss").removeprefix("eval_")
        value = metrics.get(f"eval_{metric}")
        losses = [row["loss"] for row in state.log_history if "loss" in row]
        self._log.info(
            "epoch %d/%d done: train loss %s, validation %s %s, %s",
            round(state.epoch or 0),
            int(np.ceil(args.num_train_epochs)),
            f"{losses[-1]:.4f}" if losses else "n/a",
            metric,
            f"{value:.4f}" if isinstance(value, float | int) else "n/a",
            format_duration(time.perf_counter() - (self._epoch_start or self._begin)),
        )


class EpochWindows(TrainerCallback):
    """Tell the training set which epoch starts, so it draws that epoch's windows (resumes included)."""

    def __init__(self, dataset: Any) -> None:
        self._dataset = dataset  # the trainer's train_dataset; one with `set_epoch` redraws its windows

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if self._dataset is not None and hasattr(self._dataset, "set_epoch"):
            self._dataset.set_epoch(round(state.epoch or 0))


class FinetuneTrainer(Trainer):
    """A `Trainer` that stops on a NaN/inf loss, measures pure training throughput and logs progress.

    Takes `Trainer`'s keyword arguments; its own callbacks are added after the caller's. Under FSDP
    (`args.fsdp`, stages/model/sharding.py) in bf16, gradients are reduced in fp32."""

    def __init__(
        self,
        log: logging.Logger,
        class_weights: torch.Tensor | None = None,
        multi_label: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.class_weights = class_weights  # per class id (`class_weights: balanced`); None = plain CE
        self.multi_label = multi_label  # label sets: class_weights are per-label positive weights of BCE
        # The heads trained here return the mean cross-entropy of their batch and ignore `num_items_in_batch`.
        # Left True (Trainer infers it from `**kwargs` in `forward`), the Trainer would multiply that mean by
        # the number of processes and skip dividing by the accumulation steps: the loss and the gradients of
        # a multi-process or accumulated run would be N times too large (clipping then acts differently).
        self.model_accepts_loss_kwargs = False
        if self.is_fsdp_enabled and self.args.bf16:
            # accelerate's bf16 default also reduces gradients in bf16; sum them in fp32 instead
            self.accelerator.state.fsdp_plugin.mixed_precision_policy = bf16_policy()
        self.progress = Progress(len(kw.get("eval_dataset") or ()), log)
        self.add_callback(self.progress)
        self.add_callback(EpochWindows(kw.get("train_dataset")))

    def create_accelerator_and_postprocess(self) -> None:
        super().create_accelerator_and_postprocess()
        if self.args.fsdp and not self.is_fsdp_enabled:
            enable_fsdp_on_cpu(self.accelerator, self.args.fsdp_plugin_args or {})
            self.is_fsdp_enabled = True

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        # With sharded (DCP) checkpoints, transformers 5.24 records the best checkpoint only if `checkpoint-N`
        # exists right after `save_model`, which then writes nothing: the folder appears later, with the
        # optimizer. Ranks raced on that check, disagreed on the best checkpoint and hung at its reload.
        # Creating the folder here, on every rank before the check's barrier, makes them agree.
        if self.is_fsdp_enabled and output_dir is not None:
            os.makedirs(output_dir, exist_ok=True)
        super().save_model(output_dir, _internal_call)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor | Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """The head's own mean cross-entropy, or with `class_weights` the weighted one computed here.

        Weighted, it is torch's weighted mean (`sum w[y] * ce / sum w[y]` over the batch): still a per-batch
        mean, so the Trainer's division by the accumulation steps stays right (see `__init__`)."""
        if self.class_weights is None or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs["labels"]
        outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        weight = self.class_weights.to(device=logits.device, dtype=torch.float32)
        if self.multi_label:  # the mean over (row, label) of BCE, each label's positive terms x its weight
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits.float(), labels.float(), pos_weight=weight
            )
            return (loss, outputs) if return_outputs else loss
        loss = torch.nn.functional.cross_entropy(logits.float(), labels.view(-1), weight=weight)
        return (loss, outputs) if return_outputs else loss

    def training_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor | Any],
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not bool(torch.isfinite(loss).all()):
            raise NonFiniteLossError(
                f"finetune: the training loss became {float(loss)} at step {self.state.global_step + 1} "
                f"(epoch {self.state.epoch or 0:.2f}); the updates diverged. Lower finetune.learning_rate "
                f"(now {self.args.learning_rate:g}), keep finetune.max_grad_norm > 0, or use precision fp32; "
                "the last good checkpoint is kept, but changing params starts afresh."
            )
        self.progress.samples += int(inputs["input_ids"].shape[0])
        return loss
