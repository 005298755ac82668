"""The finetune recipe: `setup`, `train` and `save`, run in turn by `run_finetune`.

    report = run_finetune(params, base, Paths(splits, labels, out, checkpoints, report, history, plot), log)

`setup` resolves the runtime, reads labels and splits, finds the checkpoint to resume from and builds the
seeded model and window datasets; `train` runs `FinetuneTrainer` (stages/model/trainer.py: the NaN
guard, throughput and progress lines), early-stopped on validation; `save` writes the best model with
its resolved params, the history, the curves and reports/finetune.json (rank 0 only).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import transformers
from datasets import Dataset
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainerCallback,
    set_seed,
)
from transformers.trainer_utils import TrainOutput

from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.core.io import write_json
from stages.core.label_sets import MULTI_LABEL_TASK
from stages.data.label_map import read_label_names
from stages.data.windows import WindowList, WindowSampler, mean_by_row
from stages.model.build import (
    count_params,
    load_model_and_tokenizer,
    model_source,
    save_model,
    set_head_bias,
)
from stages.model.checkpoints import find_resume, prepare_checkpoints, run_fingerprint
from stages.model.history import Row, best_row, epoch_history, plot_history
from stages.model.multilabel import multi_hot, sigmoid, tune_thresholds
from stages.model.runtime import Runtime, resolve_runtime, single_process
from stages.model.sharding import fsdp_config, full_state_dict, is_sharded
from stages.model.splits import is_label_sets, load_splits
from stages.model.trainer import FinetuneError, FinetuneTrainer
from stages.model.training import (
    MULTI_LABEL_VALIDATION_METRICS,
    VALIDATION_METRICS,
    balanced_class_weights,
    compute_validation_metrics,
    positive_weights,
    prior_bias,
    training_arguments,
    window_datasets,
)
from stages.reports.finetune import FinetuneReport


@dataclass(frozen=True)
class Paths:
    """The stage's inputs and outputs, as dvc.yaml names them (stages/config/paths.py)."""

    splits: Path
    labels: Path
    out: Path
    checkpoints: Path
    report: Path
    history: Path
    plot: Path


@dataclass
class Setup:
    """What `setup` builds for `train` and `save`: the runtime, the data, the model and where to resume."""

    rt: Runtime
    names: list[str]  # class names in id order
    train: Dataset  # the train and validation splits
    val: Dataset
    train_ds: WindowSampler  # one window per train text per epoch
    val_ds: WindowList  # every window of every validation text
    val_owner: np.ndarray  # validation window -> its text
    model: PreTrainedModel
    tok: PreTrainedTokenizerBase
    resume: Path | None  # the checkpoint this run resumes from
    trainable: int
    total: int
    class_weights: dict[str, float] | None = None  # `class_weights: balanced`: per class name, from train
    multi_label: bool = False  # label sets (`label.task: multi_label`): class_weights are positive weights
    thresholds: dict[str, float] | None = None  # label sets: each label's threshold, tuned on validation

    @property
    def weights_key(self) -> str:
        """What the recorded weights are called: per class (cross-entropy) or per label (BCE positives)."""
        return "positive_weights" if self.multi_label else "class_weights"


def run_finetune(
    p: FinetuneParams,
    base: BaseModelRef,
    paths: Paths,
    log: logging.Logger,
    callbacks: list[TrainerCallback] | None = None,
) -> dict[str, Any] | None:
    """Train, keep the best epoch, write model, history, curves and report; return the report (rank 0)."""
    t_start = time.time()
    s = setup(p, base, paths, log)
    trainer, out = train(p, s, paths, log, callbacks)
    if s.multi_label:  # every rank: the validation pass is collective under ddp and fsdp
        s.thresholds = tune_validation_thresholds(trainer, s)
        cast(PreTrainedModel, trainer.model).config.ftpipe_thresholds = s.thresholds
    # fsdp: every rank sends its shard of the best model; rank 0 receives the whole of it
    model = cast(torch.nn.Module, trainer.model)
    state = full_state_dict(model) if is_sharded(model) else None
    if not trainer.is_world_process_zero():
        return None
    return save(p, base, paths, s, trainer, out, t_start, log, state)


def setup(p: FinetuneParams, base: BaseModelRef, paths: Paths, log: logging.Logger) -> Setup:
    """Runtime, labels and splits, the checkpoint to resume from, then (seeded) the model and datasets."""
    rt = resolve_runtime(p)
    names = read_label_names(paths.labels)
    train, val = load_splits(paths.splits, names, p.max_train_samples, p.seed)
    multi = is_label_sets(train)
    if p.metric == "micro_f1" and not multi:
        raise FinetuneError(
            "finetune.metric micro_f1 is for label sets (label.task multi_label); with one label per text "
            "it equals accuracy. Set finetune.metric to accuracy, macro_f1 or weighted_f1."
        )
    fingerprint = run_fingerprint(p, base, paths.splits, paths.labels)
    if single_process(rt):
        resume = prepare_checkpoints(paths.checkpoints, fingerprint, log)
    else:
        resume = find_resume(paths.checkpoints, fingerprint)
        if resume is not None and rt.rank == 0:
            log.info("resuming from %s (same params and data as the interrupted run)", resume)
    if rt.rank == 0:
        log.info(
            "device %s, precision %s (%s), %d process(es); %d train / %d validation rows; freeze=%s, pooling=%s",
            rt.device,
            rt.precision,
            rt.reason,
            rt.world_size,
            len(train),
            len(val),
            p.freeze,
            p.pooling,
        )
    set_seed(p.seed)  # before the head is initialised
    model, tok = load_model_and_tokenizer(base, names, p.freeze, p.pooling, multi_label=multi)
    trainable, total = count_params(model)
    n_labels = len(names) if multi else None
    train_ds, val_ds, val_owner = window_datasets(train, val, list(tok.model_input_names), p.seed, n_labels)
    weights = balanced_weights(train, names, multi) if p.class_weights == "balanced" else None
    if weights and rt.rank == 0:
        what = "positive weights per label" if multi else "class weights"
        log.info("%s (balanced, from %d train rows): %s", what, len(train), weights)
    if multi:
        start_at_prior(model, train, names, weights, log if rt.rank == 0 else None)
    return Setup(
        rt,
        names,
        train,
        val,
        train_ds,
        val_ds,
        val_owner,
        model,
        tok,
        resume,
        trainable,
        total,
        weights,
        multi,
    )


def start_at_prior(
    model: PreTrainedModel,
    train: Dataset,
    names: list[str],
    weights: dict[str, float] | None,
    log: logging.Logger | None,
) -> None:
    """Label sets: the head's bias starts at each label's log-odds in train (`training.prior_bias`)."""
    hot = multi_hot(train["label"], len(names))
    bias = prior_bias(hot, None if weights is None else np.array(list(weights.values())))
    done = set_head_bias(model, bias)
    if log is not None:
        log.info(
            "head bias %s: each label's log-odds in train, %.2f to %.2f",
            "set" if done else "left as built (no linear output layer found)",
            float(bias.min()),
            float(bias.max()),
        )


def balanced_weights(train: Dataset, names: list[str], multi: bool) -> dict[str, float]:
    """`class_weights: balanced`, per name: sklearn's class weights, or for label sets each label's positive
    weight. The weights trained with are the rounded ones recorded."""
    if multi:
        w = positive_weights(multi_hot(train["label"], len(names)))
    else:
        w = balanced_class_weights(np.asarray(train["label"]), len(names))
    return {n: round(float(x), 6) for n, x in zip(names, w, strict=True)}


def validation_labels(s: Setup) -> np.ndarray:
    """The validation split's labels: a class id per text, or for label sets a 0/1 row per text."""
    if s.multi_label:
        return multi_hot(s.val["label"], len(s.names))
    return np.asarray(s.val["label"])


def tune_validation_thresholds(trainer: FinetuneTrainer, s: Setup) -> dict[str, float]:
    """Each label's decision threshold (label sets): the one that maximises its F1 on the validation split,
    read by the best model as every prediction reads it (the mean of a text's window probabilities).
    Saved in the model's config.json (`ftpipe_thresholds`), where evaluate and the served model read it."""
    logits = trainer.predict(cast(Any, s.val_ds)).predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    probs = mean_by_row(sigmoid(np.asarray(logits)), s.val_owner, len(s.val))
    tuned = tune_thresholds(validation_labels(s), probs)
    return {n: round(float(t), 6) for n, t in zip(s.names, tuned, strict=True)}


def train(
    p: FinetuneParams,
    s: Setup,
    paths: Paths,
    log: logging.Logger,
    callbacks: list[TrainerCallback] | None = None,
) -> tuple[FinetuneTrainer, TrainOutput]:
    """The Trainer over the window datasets, early-stopped on validation; trained from `s.resume` if set."""
    callbacks = [*(callbacks or [])]
    if p.patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=p.patience))
    val_y = validation_labels(s)
    recompute = p.activation_checkpointing or p.gradient_checkpointing
    fsdp = fsdp_config(s.model, recompute) if p.strategy == "fsdp" else None
    trainer = FinetuneTrainer(
        log,
        class_weights=torch.tensor(list(s.class_weights.values())) if s.class_weights else None,
        multi_label=s.multi_label,
        model=s.model,
        args=training_arguments(p, s.rt, paths.checkpoints, fsdp),
        data_collator=DataCollatorWithPadding(s.tok),
        train_dataset=s.train_ds,
        eval_dataset=s.val_ds,
        processing_class=s.tok,
        compute_metrics=lambda ev: compute_validation_metrics(ev, s.names, s.val_owner, val_y),
        callbacks=callbacks,
    )
    out = trainer.train(resume_from_checkpoint=str(s.resume) if s.resume else None)
    return trainer, out


def save(
    p: FinetuneParams,
    base: BaseModelRef,
    paths: Paths,
    s: Setup,
    trainer: FinetuneTrainer,
    out: TrainOutput,
    t_start: float,
    log: logging.Logger,
    state: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """The best model with its resolved params, the history, the curves and the report; checkpoints cleared.

    `state`: the gathered weights of a sharded (fsdp) model, see `save_model`."""
    history = epoch_history(trainer.state.log_history)
    best = best_row(history, trainer.state.best_global_step)
    save_model(cast(torch.nn.Module, trainer.model), s.tok, paths.out, resolved_params(p, base, s), state)
    write_json(paths.history, history)
    plot_history(history, p.metric, paths.plot, best["epoch"])
    report = finetune_report(p, base, s, trainer, out, history, best, t_start)
    write_json(paths.report, report.dump())
    if single_process(s.rt):
        shutil.rmtree(paths.checkpoints, ignore_errors=True)
    log.info(
        "best epoch %s: validation %s %.4f, accuracy %.4f; %s samples/s; %d of %d params trained",
        best["epoch"],
        p.metric,
        best[f"val_{p.metric}"],
        best["val_accuracy"],
        report.train_samples_per_s,
        s.trainable,
        s.total,
    )
    return report.dump()


def resolved_params(p: FinetuneParams, base: BaseModelRef, s: Setup) -> dict[str, Any]:
    """How the model was made, saved beside it (`ftpipe_params.json`): params, base, labels, runtime."""
    return {
        "finetune": p.record(),
        "base_model": {**base.model_dump(), "source": model_source(base.model)},
        "labels": s.names,
        **({s.weights_key: s.class_weights} if s.class_weights else {}),
        **({"task": MULTI_LABEL_TASK, "thresholds": s.thresholds} if s.multi_label else {}),
        "device": s.rt.device,
        "precision": s.rt.precision,
        "num_processes": s.rt.world_size,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def finetune_report(
    p: FinetuneParams,
    base: BaseModelRef,
    s: Setup,
    trainer: FinetuneTrainer,
    out: TrainOutput,
    history: list[Row],
    best: Row,
    t_start: float,
) -> FinetuneReport:
    """reports/finetune.json: where and how it trained, the best epoch, throughput and timings."""
    samples = trainer.progress.samples * s.rt.world_size
    step_s = trainer.progress.seconds
    return FinetuneReport(
        base_model=base.model,
        device=s.rt.device,
        precision=s.rt.precision,
        precision_reason=s.rt.reason,
        num_processes=s.rt.world_size,
        strategy=p.strategy,
        freeze=p.freeze,
        pooling=p.pooling,
        train_rows=len(s.train),
        validation_rows=len(s.val),
        validation_windows=len(s.val_ds),
        windows_per_train_text=round(sum(len(r) for r in s.train_ds.rows) / max(1, len(s.train_ds)), 3),
        epochs_run=history[-1]["epoch"] if history else 0,
        stopped_early=bool(history) and history[-1]["epoch"] < p.epochs,
        best_epoch=best["epoch"],
        best_metric=p.metric,
        best_validation={k: best[f"val_{k}"] for k in ("loss", *validation_metrics(s))},
        train_samples_per_s=round(samples / step_s, 3) if step_s > 0 else None,
        train_runtime_s=round(float(out.metrics.get("train_runtime", 0.0)), 2),
        wall_time_s=round(time.time() - t_start, 2),
        trainable_params=s.trainable,
        total_params=s.total,
        resumed_from=str(s.resume) if s.resume else None,
        **({s.weights_key: s.class_weights} if s.class_weights else {}),  # unweighted: the key stays out
        **({"task": MULTI_LABEL_TASK, "thresholds": s.thresholds} if s.multi_label else {}),
    )


def validation_metrics(s: Setup) -> tuple[str, ...]:
    """The validation figures of each epoch: label sets add micro-F1 and the Hamming loss."""
    return MULTI_LABEL_VALIDATION_METRICS if s.multi_label else VALIDATION_METRICS
