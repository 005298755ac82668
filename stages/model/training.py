"""What the Trainer is handed: its arguments from the params, the window datasets and the validation metrics.

    args = training_arguments(params, runtime, Path("checkpoints/finetune"))
    train_ds, val_ds, val_owner = window_datasets(train, val, tok.model_input_names, seed=42)

A text the tokenize stage cut into several windows trains on one of them per epoch (`WindowSampler`);
validation scores every window and a text by the mean of its windows' probabilities, as evaluate and
the served model do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from sklearn.utils.class_weight import compute_class_weight
from transformers import EvalPrediction, TrainingArguments

from stages.config.finetune import FinetuneParams
from stages.data.windows import WindowList, WindowSampler, flatten, mean_by_row, row_windows
from stages.model.metrics import classification_metrics, softmax
from stages.model.multilabel import decide, multi_hot, multilabel_metrics, sigmoid
from stages.model.runtime import Runtime

VALIDATION_METRICS = ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "ece")
# label sets: `accuracy` is subset accuracy (the whole set right), plus micro-F1 and the Hamming loss
MULTI_LABEL_VALIDATION_METRICS = (*VALIDATION_METRICS, "micro_f1", "hamming_loss")


def training_arguments(
    p: FinetuneParams, rt: Runtime, ckpt_dir: Path, fsdp: dict[str, Any] | None = None
) -> TrainingArguments:
    """TrainingArguments from the params: per-epoch eval + checkpoint, best epoch reloaded at the end.

    `fsdp` (strategy fsdp: `sharding.fsdp_config`) turns on FSDP2, which then does the activation
    checkpointing per block itself."""
    recompute = p.gradient_checkpointing or p.activation_checkpointing
    return TrainingArguments(
        output_dir=str(ckpt_dir),
        num_train_epochs=p.epochs,
        learning_rate=p.learning_rate,
        per_device_train_batch_size=p.batch_size,
        per_device_eval_batch_size=p.eval_batch_size,
        gradient_accumulation_steps=p.gradient_accumulation_steps,
        weight_decay=p.weight_decay,
        warmup_steps=p.warmup if p.warmup < 1 else int(p.warmup),
        lr_scheduler_type=p.scheduler,
        max_grad_norm=p.max_grad_norm,
        seed=p.seed,
        data_seed=p.seed,
        full_determinism=rt.device == "cpu",  # cheap on the CPU; slows CUDA down, where it is left off
        bf16=rt.precision == "bf16",
        fp16=rt.precision == "fp16",
        activation_checkpointing=recompute and fsdp is None,
        fsdp=fsdp is not None,  # type: ignore[arg-type]  # transformers 5 asks for True; its hint is older
        fsdp_config=fsdp,
        use_cpu=rt.device == "cpu",
        ddp_backend=rt.backend,
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        save_total_limit=2,  # the best and the latest
        load_best_model_at_end=True,
        metric_for_best_model=p.metric,
        greater_is_better=True,
        restore_callback_states_from_checkpoint=True,  # early-stopping patience survives a resume
        logging_nan_inf_filter=False,
        dataloader_pin_memory=rt.device == "cuda",
        disable_tqdm=True,
        report_to="none",
    )


def compute_validation_metrics(
    eval_pred: EvalPrediction, names: list[str], owner: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """Validation figures logged each epoch (the early-stopping metric among them), one prediction per text.

    The predictions arrive per window, in order; `owner` maps each to its text, whose prediction is the
    mean of its windows' probabilities (as in evaluate and the served model).
    """
    logits = eval_pred.predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    if labels.ndim == 2:  # label sets: a 0/1 row per text, each label decided at 0.5 while training
        probs = mean_by_row(sigmoid(logits), owner, len(labels))
        m = multilabel_metrics(labels, decide(probs, np.full(len(names), 0.5)), names, probs)
        return {k: m[k] for k in MULTI_LABEL_VALIDATION_METRICS}
    probs = mean_by_row(softmax(logits), owner, len(labels))
    m = classification_metrics(labels, probs.argmax(axis=1), names, probs)
    return {k: m[k] for k in VALIDATION_METRICS}


def positive_weights(hot: np.ndarray) -> np.ndarray:
    """A positive weight per label for binary cross-entropy (`class_weights: balanced`, label sets): its
    negative rows over its positive rows in train, so each label's positives weigh as much as its
    negatives; a label no train row carries (or every row does) gets 1.0."""
    pos = hot.sum(axis=0).astype(np.float64)
    neg = len(hot) - pos
    out = np.ones(hot.shape[1], dtype=np.float64)
    both = (pos > 0) & (neg > 0)
    out[both] = neg[both] / pos[both]
    return out


def prior_bias(hot: np.ndarray, pos_weight: np.ndarray | None = None) -> np.ndarray:
    """Label sets: each label's starting bias, the log-odds of its (weighted) share of the train rows.

    A fresh head's logits start near 0, a probability of 0.5 for every label, while a label is on a few
    percent of the texts; AdamW moves a bias by about the learning rate a step, so 1e-4 x 500 steps shifts
    it by 0.05, far from the -3 of a 5% label, and the body has to learn the labels' rarity before their
    meaning (the bias initialisation of Lin et al., "Focal loss for dense object detection", 2017). With
    positive weights the constant prediction that minimises the loss has odds w x p / (1 - p). Shares are
    clipped to [1/(n+1), n/(n+1)] so a label on no row (or every row) gets a finite bias."""
    n = len(hot)
    share = np.clip(hot.mean(axis=0), 1 / (n + 1), n / (n + 1))
    odds = share / (1 - share) * (1.0 if pos_weight is None else pos_weight)
    out: np.ndarray = np.log(odds)
    return out


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """sklearn's 'balanced' weights, n_rows / (n_present_classes x rows of the class), one per class id.

    A class absent from `labels` (a `max_train_samples` draw can miss a rare one) gets 1.0: no training
    row carries it, so its weight only touches the validation loss."""
    y = np.asarray(labels, dtype=np.int64)
    present = np.unique(y)
    weights = np.ones(n_classes, dtype=np.float64)
    weights[present] = compute_class_weight("balanced", classes=present, y=y)
    return weights


def window_datasets(
    train: Dataset, val: Dataset, input_names: list[str], seed: int, n_labels: int | None = None
) -> tuple[WindowSampler, WindowList, np.ndarray]:
    """Training set (one window per text per epoch), validation set (every window) and its window->text map.

    With `n_labels` (label sets, `label.task: multi_label`) a window's `labels` is its text's 0/1 row of
    `n_labels` floats, what binary cross-entropy reads; otherwise its text's class id."""
    flat, owner = flatten(row_windows(val, input_names))
    if n_labels is not None:
        train_hot = multi_hot(train["label"], n_labels).astype(float).tolist()
        val_hot = multi_hot(val["label"], n_labels).astype(float).tolist()
        train_ds = WindowSampler(row_windows(train, input_names), train_hot, seed)
        return (
            train_ds,
            WindowList([{**w, "labels": val_hot[o]} for w, o in zip(flat, owner, strict=True)]),
            owner,
        )
    train_ds = WindowSampler(row_windows(train, input_names), list(train["label"]), seed)
    val_y = np.asarray(val["label"])
    val_ds = WindowList([{**w, "labels": int(val_y[o])} for w, o in zip(flat, owner, strict=True)])
    return train_ds, val_ds, owner
