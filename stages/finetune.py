"""finetune: full-parameter fine-tuning of `tokenize.model` on the train split, early-stopped on validation.

    python -m stages.finetune --splits data/processed/splits --labels data/processed/labels.json \
        --out models/model --checkpoints checkpoints/finetune --report reports/finetune.json \
        --history reports/finetune_history.json --plot reports/finetune_curves.png

The base checkpoint gets a sequence-classification head sized from labels.json (id2label/label2id go into
its config) and every parameter is trained (`freeze: encoder` trains the head alone, the classic
baseline). The head reads the mean of the body's last hidden states (`pooling: mean`, how
sentence-embedding checkpoints such as MiniLM were trained to be read) or is the architecture's own
(`native`). A text the tokenize stage cut into several windows trains on one of them per epoch, drawn
afresh each epoch (seeded); validation scores a text by the mean of its windows' probabilities, as
evaluate and the served model do. The Hugging Face `Trainer` does the work: mixed precision (bf16 on a
CUDA device that has it, fp32 on the CPU), gradient accumulation, one checkpoint per epoch in
`--checkpoints` (not a DVC output), early stopping on the validation metric and reloading the best epoch.
An interrupted run resumes from its last checkpoint when params and data are unchanged; a NaN or
infinite loss stops the run naming the step. `num_processes > 1` relaunches this module under
`torchrun` (gloo on the CPU, nccl on GPUs).
Decoder-only checkpoints without a pad token get pad = eos.

`run_finetune` is three steps, each a function below: `setup` (runtime, data, the checkpoint to resume
from, the seeded model and window datasets), `train` (`FinetuneTrainer`, stages/model/trainer.py: the
NaN guard, throughput and progress lines) and `save` (model, history, curves, report).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import transformers
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import TrainOutput

from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.config.tokenize import TokenizeParams
from stages.core.io import atomic_dir, atomic_file, read_json, write_json
from stages.core.logs import setup_logging
from stages.data.windows import WindowList, WindowSampler, flatten, mean_by_row, row_windows
from stages.model.memplan import require_fit
from stages.model.metrics import classification_metrics, softmax
from stages.model.resolve import BUILTIN_MODELS, resolve_model
from stages.model.sharding import (
    fsdp_config,
    full_state_dict,
    is_sharded,
    sharded_checkpoint_complete,
    unsharded_copy,
)
from stages.model.trainer import FinetuneError, FinetuneTrainer
from stages.model.trainer import NonFiniteLossError as NonFiniteLossError  # re-export
from stages.model.trainer import format_duration as format_duration  # re-export
from stages.serving.manifest import write_folder_manifest

FINGERPRINT_FILE = "ftpipe_fingerprint.json"
PARAMS_FILE = "ftpipe_params.json"
CHILD_ENV = "FTPIPE_FINETUNE_CHILD"  # set by the launcher on the torchrun workers it starts
VALIDATION_METRICS = ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "ece")


@dataclass(frozen=True)
class Paths:
    splits: Path
    labels: Path
    out: Path
    checkpoints: Path
    report: Path
    history: Path
    plot: Path


@dataclass(frozen=True)
class Runtime:
    device: str  # cpu | cuda
    precision: str  # fp32 | bf16 | fp16
    world_size: int
    rank: int
    backend: str | None  # gloo | nccl when world_size > 1
    reason: str = ""  # why this precision (the report and the model card say it)


# --------------------------------------------------------------------------------------------- set-up


def resolve_runtime(p: FinetuneParams) -> Runtime:
    """Device, precision and process layout for this process (CUDA when present, else CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision: str = p.precision
    reason = "set by finetune.precision"
    if precision == "auto":
        precision, reason = auto_precision(device)
    if precision == "fp16" and device != "cuda":
        raise FinetuneError(
            "finetune.precision = fp16 needs a CUDA device and none is visible; use `auto`, `fp32` or `bf16` "
            "(bf16 autocast works on CPUs that support it)."
        )
    if device == "cuda" and p.num_processes > torch.cuda.device_count():
        raise FinetuneError(
            f"finetune.num_processes = {p.num_processes} but only {torch.cuda.device_count()} CUDA device(s) "
            "are visible; lower it or expose more GPUs (CUDA_VISIBLE_DEVICES)."
        )
    backend = None if world == 1 else ("nccl" if device == "cuda" else "gloo")
    return Runtime(
        device=device, precision=precision, world_size=world, rank=rank, backend=backend, reason=reason
    )


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The CPU feature flags the kernel reports (Linux), or None where they cannot be read."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return None


def auto_precision(device: str, flags: set[str] | None = None) -> tuple[str, str]:
    """`precision: auto`: bf16 where the hardware computes it natively, else fp32; and why.

    A CUDA device that supports bf16 gets bf16. A CPU gets bf16 autocast only with a native bf16
    instruction set (AVX512-BF16 or AMX); without one, bf16 would be emulated and slower than fp32.
    """
    if device == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: the CUDA device supports bf16"
        return "fp32", "auto: the CUDA device has no bf16"
    flags = cpu_flags() if flags is None else flags
    if flags is None:
        return "fp32", "auto: the CPU's flags cannot be read here, so native bf16 is not assumed"
    native = [f for f in BF16_CPU_FLAGS if f in flags]
    if native:
        return "bf16", f"auto: the CPU has native bf16 ({', '.join(native)})"
    return "fp32", "auto: the CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag)"


def load_label_names(path: Path) -> list[str]:
    """Class names in id order from labels.json ({"0": name, ...})."""
    data = read_json(path)
    try:
        ids = sorted(int(k) for k in data)
    except (TypeError, ValueError):
        raise FinetuneError(f'{path}: keys must be class ids "0", "1", ...; rerun the label stage.') from None
    if ids != list(range(len(ids))) or len(ids) < 2:
        raise FinetuneError(
            f"{path}: expected ids 0..n-1 for at least two classes, got {ids}; rerun the label stage."
        )
    return [str(data[str(i)]) for i in ids]


def load_splits(
    splits_dir: Path, names: list[str], max_train_samples: int | None, seed: int
) -> tuple[Any, Any]:
    """The train and validation splits, checked against labels.json; train optionally cut to a seeded sample."""
    from datasets import load_from_disk

    dd = load_from_disk(str(splits_dir))
    missing = {"train", "validation"} - set(dd)
    if missing:
        raise FinetuneError(f"{splits_dir}: split(s) {sorted(missing)} missing; rerun the label stage.")
    have = list(dd["train"].features["label"].names)
    if have != names:
        raise FinetuneError(
            f"{splits_dir}: label names {have} differ from labels.json {names}; the two come from different "
            "label runs. Rerun `dvc repro label`."
        )
    train, val = dd["train"], dd["validation"]
    if max_train_samples is not None and max_train_samples < len(train):
        # in memory: datasets would otherwise write its index cache into label's DVC output (data/processed)
        train = train.shuffle(seed=seed, keep_in_memory=True).select(
            range(max_train_samples), keep_in_memory=True
        )
    return train, val


def run_fingerprint(p: FinetuneParams, base: BaseModelRef, splits_dir: Path, labels_path: Path) -> str:
    """What a checkpoint must match to be resumed: the params, the base model and the data, hashed."""
    h = hashlib.sha256()
    h.update(json.dumps({"finetune": p.model_dump(), "base": base.model_dump()}, sort_keys=True).encode())
    h.update(labels_path.read_bytes())
    for f in sorted(x for x in splits_dir.rglob("*") if x.is_file()):
        h.update(str(f.relative_to(splits_dir)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


_CKPT = re.compile(r"^checkpoint-(\d+)$")


def _complete(ckpt: Path) -> bool:
    """Trainer writes trainer_state.json last, so its presence (and parse) marks a finished checkpoint."""
    try:
        json.loads((ckpt / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    if sharded_checkpoint_complete(ckpt):  # strategy fsdp: DCP shards of the model and the optimizer
        return True
    has_weights = any((ckpt / n).exists() for n in ("model.safetensors", "model.safetensors.index.json"))
    return has_weights and (ckpt / "optimizer.pt").exists()


def last_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder, or None."""
    if not ckpt_dir.is_dir():
        return None
    found = sorted(
        ((int(m.group(1)), d) for d in ckpt_dir.iterdir() if d.is_dir() and (m := _CKPT.match(d.name))),
        reverse=True,
    )
    return next((d for _, d in found if _complete(d)), None)


def prepare_checkpoints(ckpt_dir: Path, fingerprint: str, log: Any) -> Path | None:
    """Return the checkpoint to resume from; clear checkpoints left by a run with other params or data."""
    marker = ckpt_dir / FINGERPRINT_FILE
    if ckpt_dir.exists() and any(ckpt_dir.iterdir()):
        old = read_json(marker).get("fingerprint") if marker.is_file() else None
        if old == fingerprint:
            for d in ckpt_dir.iterdir():  # a half-written checkpoint from a kill mid-save is useless
                if d.is_dir() and _CKPT.match(d.name) and not _complete(d):
                    log.warning("removing incomplete checkpoint %s", d)
                    shutil.rmtree(d, ignore_errors=True)
            last = last_checkpoint(ckpt_dir)
            if last is not None:
                log.info("resuming from %s (same params and data as the interrupted run)", last)
                return last
        else:
            log.info("clearing %s: its checkpoints belong to other params or data", ckpt_dir)
            shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_json(marker, {"fingerprint": fingerprint})
    return None


def find_resume(ckpt_dir: Path, fingerprint: str) -> Path | None:
    """Read-only variant for torchrun workers: the launcher already prepared the folder."""
    marker = ckpt_dir / FINGERPRINT_FILE
    if marker.is_file() and read_json(marker).get("fingerprint") == fingerprint:
        return last_checkpoint(ckpt_dir)
    return None


def load_model_and_tokenizer(
    base: BaseModelRef, names: list[str], freeze: str, pooling: str = "mean"
) -> tuple[Any, Any]:
    """The base checkpoint with a fresh classification head (fp32 master weights) and its tokenizer.

    `pooling` picks the head: `mean` reads the masked mean of the body's last hidden states
    (`stages/serving/meanpool.py`), `native` the architecture's own head (BERT's [CLS] pooler, a
    decoder's last token). Decoder-only models without a pad token get pad = eos (a last-token head
    reads the last non-pad token, so the model config must know the pad id). The tokenizer's own padding/truncation
    settings are dropped: inputs arrive pre-tokenized and the saved tokenizer must not pad every input.
    """
    from stages.serving.meanpool import MeanPoolForSequenceClassification

    path = resolve_model(base.model)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=base.trust_remote_code)
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise FinetuneError(
                f"tokenize.model `{base.model}` has neither a pad nor an eos token, so batches cannot be padded; "
                "add a pad token to its tokenizer (tokenizer.add_special_tokens) and save it as a local folder."
            )
        tok.pad_token = tok.eos_token
    # how it was loaded (HF_HUB_OFFLINE sets local_files_only) is not part of the saved tokenizer
    tok.init_kwargs.pop("local_files_only", None)
    if getattr(tok, "is_fast", False):
        tok.backend_tokenizer.no_padding()
        tok.backend_tokenizer.no_truncation()
    head = {
        "num_labels": len(names),
        "id2label": dict(enumerate(names)),
        "label2id": {n: i for i, n in enumerate(names)},
        "problem_type": "single_label_classification",
    }
    if pooling == "mean":
        model = MeanPoolForSequenceClassification.from_body(
            path, trust_remote_code=base.trust_remote_code, **head
        )
        model.base_model.config.pad_token_id = tok.pad_token_id  # type: ignore[union-attr]
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, trust_remote_code=base.trust_remote_code, dtype=torch.float32, **head
        )
    model.config.pad_token_id = tok.pad_token_id
    if freeze == "encoder":
        freeze_encoder(model)
    return model, tok


def freeze_encoder(model: Any) -> None:
    """Head-only training: freeze every parameter of the pre-trained body (`model.base_model`)."""
    body = model.base_model
    if body is model:
        raise FinetuneError(
            f"finetune.freeze = encoder: cannot tell the body of {type(model).__name__} from its head "
            "(no base_model_prefix); use freeze: none."
        )
    for param in body.parameters():
        param.requires_grad = False
    if not any(p.requires_grad for p in model.parameters()):
        raise FinetuneError("finetune.freeze = encoder left no trainable parameters; use freeze: none.")


def count_params(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# ---------------------------------------------------------------------------------------------- train


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
    eval_pred: Any, names: list[str], owner: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """Validation figures logged each epoch (the early-stopping metric among them), one prediction per text.

    The predictions arrive per window, in order; `owner` maps each to its text, whose prediction is the
    mean of its windows' probabilities (as in evaluate and the served model).
    """
    logits = eval_pred.predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    probs = mean_by_row(softmax(logits), owner, len(labels))
    m = classification_metrics(labels, probs.argmax(axis=1), names, probs)
    return {k: m[k] for k in VALIDATION_METRICS}


def window_datasets(
    train: Any, val: Any, input_names: list[str], seed: int
) -> tuple[WindowSampler, WindowList, np.ndarray]:
    """Training set (one window per text per epoch), validation set (every window) and its window->text map."""
    train_ds = WindowSampler(row_windows(train, input_names), list(train["label"]), seed)
    flat, owner = flatten(row_windows(val, input_names))
    val_y = np.asarray(val["label"])
    val_ds = WindowList([{**w, "labels": int(val_y[o])} for w, o in zip(flat, owner, strict=True)])
    return train_ds, val_ds, owner


def epoch_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per epoch from Trainer's log: train loss, validation loss and metrics, learning rate."""
    rows: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        if "step" not in entry or "epoch" not in entry or "train_runtime" in entry:
            continue
        epoch = float(entry["epoch"])
        row = rows.setdefault(
            entry["step"],
            {"epoch": int(epoch) if epoch.is_integer() else round(epoch, 4), "step": entry["step"]},
        )
        if "loss" in entry:
            row["train_loss"] = float(entry["loss"])
            if "learning_rate" in entry:
                row["learning_rate"] = float(entry["learning_rate"])
        for key in ("loss", *VALIDATION_METRICS):
            if f"eval_{key}" in entry:
                row[f"val_{key}"] = float(entry[f"eval_{key}"])
    return [rows[s] for s in sorted(rows) if "val_loss" in rows[s]]


def curves_figure(history: list[dict[str, Any]], metric: str, best_epoch: float | None) -> Any:
    """Loss curves and validation metrics per epoch; the best epoch (the one kept) is marked on both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [r.get("train_loss") for r in history], "o-", label="train loss")
    ax1.plot(epochs, [r["val_loss"] for r in history], "s-", label="validation loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    for key in ("val_accuracy", "val_macro_f1"):
        ax2.plot(epochs, [r[key] for r in history], "o-", label=key.removeprefix("val_").replace("_", "-"))
    ax2.set_xlabel("epoch")
    best = next((r for r in history if r["epoch"] == best_epoch), None)
    if best is not None:
        label = f"best epoch {best_epoch} (kept)"
        for ax in (ax1, ax2):
            ax.axvline(best_epoch, color="0.4", linestyle="--", linewidth=1, label=label)
        ax2.plot([best_epoch], [best[f"val_{metric}"]], "*", color="crimson", markersize=14)
        ax2.set_title(f"validation: best epoch {best_epoch}, {metric} {best[f'val_{metric}']:.4f}")
    else:
        ax2.set_title(f"validation (best epoch by {metric})")
    for ax in (ax1, ax2):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_history(history: list[dict[str, Any]], metric: str, path: Path, best_epoch: float | None) -> None:
    """The curves of `curves_figure`, as a PNG."""
    import matplotlib.pyplot as plt

    fig = curves_figure(history, metric, best_epoch)
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)


def model_source(ref: str) -> str:
    """Where the base weights came from: the package and version for `builtin:` refs, else the resolved ref."""
    if ref.startswith("builtin:"):
        from importlib.metadata import PackageNotFoundError, version

        package = BUILTIN_MODELS.get(ref.removeprefix("builtin:"), ("?", ""))[0].replace("_", "-")
        try:
            return f"{package}=={version(package)}"
        except PackageNotFoundError:
            return package
    return resolve_model(ref)


def save_model(
    model: Any, tok: Any, out: Path, resolved: dict[str, Any], state: dict[str, Any] | None = None
) -> None:
    """The best model (safetensors), its tokenizer and the resolved params, atomically, with the manifest
    (`MANIFEST.sha256`: the sha256 of every other file) that evaluate checks before loading it.

    `state` is the gathered full state dict of a sharded (fsdp) model: the same folder is written from a
    plain copy holding it."""
    if state is not None:
        model = unsharded_copy(model, state)
    with atomic_dir(out) as tmp:
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        write_json(tmp / PARAMS_FILE, resolved)
        write_folder_manifest(tmp)


# ----------------------------------------------------------------------------------- the steps


@dataclass
class Setup:
    """What `setup` builds for `train` and `save`: the runtime, the data, the model and where to resume."""

    rt: Runtime
    names: list[str]  # class names in id order
    train: Any  # the train and validation splits (datasets.Dataset)
    val: Any
    train_ds: WindowSampler  # one window per train text per epoch
    val_ds: WindowList  # every window of every validation text
    val_owner: np.ndarray  # validation window -> its text
    model: Any
    tok: Any
    resume: Path | None  # the checkpoint this run resumes from
    trainable: int
    total: int


def run_finetune(
    p: FinetuneParams, base: BaseModelRef, paths: Paths, log: Any, callbacks: list[Any] | None = None
) -> dict[str, Any] | None:
    """Train, keep the best epoch, write model, history, curves and report; return the report (rank 0)."""
    t_start = time.time()
    s = setup(p, base, paths, log)
    trainer, out = train(p, s, paths, log, callbacks)
    # fsdp: every rank sends its shard of the best model; rank 0 receives the whole of it
    model = cast(torch.nn.Module, trainer.model)
    state = full_state_dict(model) if is_sharded(model) else None
    if not trainer.is_world_process_zero():
        return None
    return save(p, base, paths, s, trainer, out, t_start, log, state)


def _single_process(rt: Runtime) -> bool:
    """One process not started by the launcher: it owns the checkpoint folder (prepares and clears it)."""
    return rt.world_size == 1 and os.environ.get(CHILD_ENV) != "1"


def setup(p: FinetuneParams, base: BaseModelRef, paths: Paths, log: Any) -> Setup:
    """Runtime, labels and splits, the checkpoint to resume from, then (seeded) the model and datasets."""
    rt = resolve_runtime(p)
    names = load_label_names(paths.labels)
    train, val = load_splits(paths.splits, names, p.max_train_samples, p.seed)
    fingerprint = run_fingerprint(p, base, paths.splits, paths.labels)
    if _single_process(rt):
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
    model, tok = load_model_and_tokenizer(base, names, p.freeze, p.pooling)
    trainable, total = count_params(model)
    train_ds, val_ds, val_owner = window_datasets(train, val, list(tok.model_input_names), p.seed)
    return Setup(rt, names, train, val, train_ds, val_ds, val_owner, model, tok, resume, trainable, total)


def train(
    p: FinetuneParams, s: Setup, paths: Paths, log: Any, callbacks: list[Any] | None = None
) -> tuple[FinetuneTrainer, TrainOutput]:
    """The Trainer over the window datasets, early-stopped on validation; trained from `s.resume` if set."""
    callbacks = [*(callbacks or [])]
    if p.patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=p.patience))
    val_y = np.asarray(s.val["label"])
    recompute = p.activation_checkpointing or p.gradient_checkpointing
    fsdp = fsdp_config(s.model, recompute) if p.strategy == "fsdp" else None
    trainer = FinetuneTrainer(
        log,
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
    log: Any,
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The best model with its resolved params, the history, the curves and the report; checkpoints cleared.

    `state`: the gathered weights of a sharded (fsdp) model, see `save_model`."""
    history = epoch_history(trainer.state.log_history)
    best = best_row(history, trainer.state.best_global_step)
    save_model(trainer.model, s.tok, paths.out, resolved_params(p, base, s), state)
    write_json(paths.history, history)
    plot_history(history, p.metric, paths.plot, best["epoch"])
    report = finetune_report(p, base, s, trainer, out, history, best, t_start)
    write_json(paths.report, report)
    if _single_process(s.rt):
        shutil.rmtree(paths.checkpoints, ignore_errors=True)
    log.info(
        "best epoch %s: validation %s %.4f, accuracy %.4f; %s samples/s; %d of %d params trained",
        best["epoch"],
        p.metric,
        best[f"val_{p.metric}"],
        best["val_accuracy"],
        report["train_samples_per_s"],
        s.trainable,
        s.total,
    )
    return report


def best_row(history: list[dict[str, Any]], best_step: int | None) -> dict[str, Any]:
    """The history row of the kept (best) step; the last row when the Trainer named none."""
    best = next((r for r in history if r["step"] == best_step), history[-1] if history else None)
    if best is None:
        raise FinetuneError("finetune: no validation result was logged; is the validation split empty?")
    return best


def resolved_params(p: FinetuneParams, base: BaseModelRef, s: Setup) -> dict[str, Any]:
    """How the model was made, saved beside it (`ftpipe_params.json`): params, base, labels, runtime."""
    return {
        "finetune": p.model_dump(),
        "base_model": {**base.model_dump(), "source": model_source(base.model)},
        "labels": s.names,
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
    history: list[dict[str, Any]],
    best: dict[str, Any],
    t_start: float,
) -> dict[str, Any]:
    """reports/finetune.json: where and how it trained, the best epoch, throughput and timings."""
    samples = trainer.progress.samples * s.rt.world_size
    step_s = trainer.progress.seconds
    return {
        "base_model": base.model,
        "device": s.rt.device,
        "precision": s.rt.precision,
        "precision_reason": s.rt.reason,
        "num_processes": s.rt.world_size,
        "strategy": p.strategy,
        "freeze": p.freeze,
        "pooling": p.pooling,
        "train_rows": len(s.train),
        "validation_rows": len(s.val),
        "validation_windows": len(s.val_ds),
        "windows_per_train_text": round(sum(len(r) for r in s.train_ds.rows) / max(1, len(s.train_ds)), 3),
        "epochs_run": history[-1]["epoch"] if history else 0,
        "stopped_early": bool(history) and history[-1]["epoch"] < p.epochs,
        "best_epoch": best["epoch"],
        "best_metric": p.metric,
        "best_validation": {k: best[f"val_{k}"] for k in ("loss", *VALIDATION_METRICS)},
        "train_samples_per_s": round(samples / step_s, 3) if step_s > 0 else None,
        "train_runtime_s": round(float(out.metrics.get("train_runtime", 0.0)), 2),
        "wall_time_s": round(time.time() - t_start, 2),
        "trainable_params": s.trainable,
        "total_params": s.total,
        "resumed_from": str(s.resume) if s.resume else None,
    }


# ------------------------------------------------------------------------------------ multi-process


def torchrun_command(p: FinetuneParams, argv: list[str]) -> list[str]:
    """`torchrun` running this stage with `argv`: `--standalone` on one node; on several, `--nnodes` and a
    c10d rendezvous at `finetune.rdzv_endpoint` that every node's launcher joins (docs/training.md)."""
    if p.num_nodes > 1:
        layout = [
            f"--nnodes={p.num_nodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={p.rdzv_endpoint}",
            f"--rdzv-id={p.rdzv_id}",
        ]
    else:
        layout = ["--standalone"]
    run = [sys.executable, "-m", "torch.distributed.run", *layout]
    return [*run, f"--nproc-per-node={p.num_processes}", "-m", "stages.finetune", *argv]


def launch_distributed(
    p: FinetuneParams, base: BaseModelRef, paths: Paths, argv: list[str], log: Any
) -> None:
    """Run this same stage under `torchrun` (`torchrun_command`); prepare and finally clear the checkpoints."""
    prepare_checkpoints(paths.checkpoints, run_fingerprint(p, base, paths.splits, paths.labels), log)
    cmd = torchrun_command(p, argv)
    nodes = f" on this node, one of {p.num_nodes} nodes" if p.num_nodes > 1 else ""
    log.info("launching %d processes%s: %s", p.num_processes, nodes, " ".join(cmd))
    proc = subprocess.run(cmd, env={**os.environ, CHILD_ENV: "1"}, check=False)
    if proc.returncode != 0:
        raise FinetuneError(
            f"finetune: the {p.num_processes}-process run failed (exit {proc.returncode}); see the worker "
            f"output above. Checkpoints stay in {paths.checkpoints} for a resume."
        )
    shutil.rmtree(paths.checkpoints, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "finetune")
    args = ap.parse_args(argv)
    log = setup_logging("finetune")
    p = load_section("finetune", FinetuneParams, args.params)
    tokenize = load_section("tokenize", TokenizeParams, args.params)
    base = BaseModelRef.from_tokenize(tokenize)
    paths = Paths(
        *(
            Path(getattr(args, k))
            for k in ("splits", "labels", "out", "checkpoints", "report", "history", "plot")
        )
    )
    if "WORLD_SIZE" not in os.environ:  # the memory plan, once per machine: before any data or worker
        rt = resolve_runtime(p)
        require_fit(
            p,
            base.model,
            base.trust_remote_code,
            tokenize.max_length,
            paths.labels,
            rt.device,
            rt.precision,
            log,
        )
    if (p.num_processes > 1 or p.num_nodes > 1) and "WORLD_SIZE" not in os.environ:
        launch_distributed(p, base, paths, argv, log)
    else:
        run_finetune(p, base, paths, log)


if __name__ == "__main__":
    main()
