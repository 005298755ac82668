"""The measuring half of bench/gpu_device_check.py: three runs of the finetune core, their figures as JSON.

    python3 -m bench.gpu_device_check          # the entry: it installs the carried wheels, then calls run()

1. `minilm`: the packaged MiniLM (weights rounded to bf16 for the carry, trained from fp32 master weights)
   on the BBC splits, params.yaml's finetune recipe in `--precision` (bf16: autocast, as the stage trains
   under `precision: bf16`), about `--steps` optimizer steps;
2. `large`: a BERT-large-shaped encoder (24 layers, 1024 wide, 334M parameters) with random weights and
   MiniLM's tokenizer, batch `--large-batch`, the same steps: MFU where the GPU is not starved;
3. `accuracy`: `run_finetune` itself, one epoch of MiniLM with its real weights, model and report saved:
   the validation figures after one epoch.

The two throughput runs call the recipe's `setup` and `train` (what `run_finetune` runs before `save`)
with two callbacks: `StepMeter` times each optimizer step between `torch.cuda.synchronize()` calls (the
first steps are warm-up, not counted) and counts its tokens with a forward pre-hook; `NoCheckpoints` turns
off the per-epoch checkpoint (4 GB a save for BERT-large: disk writes are not what is measured).

FLOPs of a training step (`train_flops`): 3x the forward pass (backward = 2x forward), the forward being
2 FLOPs per linear weight per token plus, per layer, 4 x hidden FLOPs per pair of tokens of a sample
(attention scores and their weighted sum); embeddings, softmax, norms and the optimizer are not counted.
Per token that is 6 x linear weights + 12 x layers x hidden x sequence length. MFU = achieved FLOP/s over
the GPU's dense bf16 peak from its data sheet (989 TFLOP/s for the H100 SXM and the H200), counting the
non-pad tokens (`mfu`); `mfu_padded` counts the pad tokens the GPU computes too.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import resource
import shutil
import tarfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import pydantic
import torch
import transformers
from datasets import load_from_disk
from transformers import AutoTokenizer, BertConfig, BertModel, TrainerCallback

from bench.gpu_check import matmul_peak_tflops, shape_of, spec_bf16_peak
from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.config.params import load_section
from stages.core.logs import setup_logging
from stages.model import recipe
from stages.model.history import epoch_history
from stages.model.memplan import plan_run

GIB = 2**30
# BERT-large: 24 layers, 1024 wide, 16 heads, 4096 feed-forward; the vocabulary is the tokenizer's
BERT_LARGE: dict[str, Any] = {
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "max_position_embeddings": 512,
}
LARGE_LEARNING_RATE = 2e-5  # random weights in bf16: a gentle rate, no divergence in a few hundred steps


def train_flops(linear: int, layers: int, hidden: int, tokens: int, tokens_sq: int) -> float:
    """Training FLOPs of samples holding `tokens` tokens in all, `tokens_sq` being the sum over samples of
    each one's tokens squared (attention pairs tokens within a sample); for one sample of s tokens it is
    bench/gpu_check.py's `train_flops_per_sample`."""
    return 3.0 * (2 * linear * tokens + 4 * layers * hidden * tokens_sq)


def sig(x: float, digits: int = 4) -> float:
    """`x` to `digits` significant digits (a tiny model's TFLOP/s must not round to 0)."""
    return float(f"{x:.{digits}g}")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepMeter(TrainerCallback):
    """Synchronised seconds, samples and tokens of the optimizer steps after the first `warmup`."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.steps = 0
        self.seconds = 0.0
        self.samples = 0
        self.tokens = 0  # non-pad tokens
        self.tokens_sq = 0  # sum over samples of their non-pad tokens squared
        self.padded = 0  # batch x padded length: what the GPU computes
        self.padded_sq = 0
        self._begun = 0
        self._t0 = 0.0
        self._batches: list[tuple[int, int, list[int]]] = []
        self._hook: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        self._hook = model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        if not module.training:  # a validation batch
            return
        b, s = kwargs["input_ids"].shape
        mask = kwargs.get("attention_mask")
        self._batches.append((b, s, mask.sum(dim=1).tolist() if mask is not None else [s] * b))

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        sync()
        self._batches = []
        self._t0 = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        sync()
        seconds = time.perf_counter() - self._t0
        self._begun += 1
        if self._begun <= self.warmup:
            return
        self.steps += 1
        self.seconds += seconds
        for b, s, lengths in self._batches:
            self.samples += b
            self.padded += b * s
            self.padded_sq += b * s * s
            self.tokens += sum(lengths)
            self.tokens_sq += sum(n * n for n in lengths)

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self._hook is not None:
            self._hook.remove()


class NoCheckpoints(TrainerCallback):
    """No checkpoint at the end of an epoch (the throughput runs: disk writes are not what is measured)."""

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        control.should_save = False


class Check:
    """One check's shared state: options, logger, output JSON (rewritten after each run) and the peaks."""

    def __init__(self, opts: argparse.Namespace, boot: dict[str, Any]) -> None:
        self.opts = opts
        self.log = setup_logging("gpu_device_check")
        self.cuda = torch.cuda.is_available()
        self.name = torch.cuda.get_device_name() if self.cuda else platform.processor() or "cpu"
        self.spec_peak = spec_bf16_peak(self.name) if self.cuda and opts.precision == "bf16" else None
        self.matmul_peak = round(matmul_peak_tflops(), 1) if self.cuda else None
        self.figures: dict[str, Any] = {
            "machine": machine(self.name),
            "carry": boot,
            "peaks_tflops": {"bf16_dense_spec": self.spec_peak, "bf16_matmul_measured": self.matmul_peak},
            "flops_formula": "per step: 3 x (2 x linear weights x tokens + 4 x layers x hidden x the sum "
            "over samples of tokens^2); per token: 6 x linear + 12 x layers x hidden x seq",
            "runs": {},
        }

    def save(self) -> None:
        self.opts.out.mkdir(parents=True, exist_ok=True)
        (self.opts.out / "gpu_device_check.json").write_text(json.dumps(self.figures, indent=2) + "\n")

    def run(self, name: str, fn: Callable[[], dict[str, Any]]) -> None:
        """Run one measurement; an error is recorded and the next run still happens."""
        t0 = time.perf_counter()
        self.log.info("=== %s", name)
        try:
            result = fn()
        except Exception as exc:  # one failed run must not lose the others' figures
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
            self.log.error("%s failed: %s", name, result["error"])
        result["wall_s"] = round(time.perf_counter() - t0, 1)
        self.figures["runs"][name] = result
        self.save()
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()


def machine(name: str) -> dict[str, Any]:
    """What ran it: the device, torch and CUDA, and which transformers/datasets/pydantic were imported."""
    cuda = torch.cuda.is_available()
    return {
        "device": name,
        "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / GIB, 1) if cuda else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "bf16_supported": bool(cuda and torch.cuda.is_bf16_supported()),
        **{
            m.__name__: f"{m.__version__} ({Path(m.__file__ or '').parent})"
            for m in (transformers, datasets, pydantic)
        },
    }


def unpack(path: Path, work: Path) -> Path:
    """A carried .tar.xz unpacked into `work` (the folder inside it), or a folder as it is."""
    if path.is_dir():
        return path
    with tarfile.open(path, "r:xz") as tar:
        top = {m.name.split("/")[0] for m in tar.getmembers()}
        tar.extractall(work, filter="data")
    return work / top.pop()


def recipe_for(check: Check, **overrides: Any) -> FinetuneParams:
    """params.yaml's finetune recipe with `overrides` and the check's precision."""
    shipped = load_section("finetune", FinetuneParams, "params.yaml")
    return FinetuneParams(**{**shipped.model_dump(), "precision": check.opts.precision, **overrides})


def paths_for(work: Path, splits: Path, labels: Path) -> recipe.Paths:
    return recipe.Paths(
        splits, labels, work / "model", work / "checkpoints", work / "finetune.json", work / "history.json",
        work / "curves.png",
    )  # fmt: skip


def planned(p: FinetuneParams, ref: str, max_length: int, labels: Path, device: str) -> dict[str, Any]:
    """The memory plan of this run (what `ftpipe plan` prints), its rows in GiB; `tensors` leaves out the
    framework row (the CUDA context), which `max_memory_allocated` does not see."""
    precision = p.precision if p.precision != "auto" else "fp32"
    plan = plan_run(p, ref, False, max_length, labels, device, precision, (2**62, "gpu_device_check"))
    rows = {r.name: round(r.bytes / GIB, 3) for r in plan.rows}
    tensors = sum(r.bytes for r in plan.rows if r.name != "framework")
    return {
        "total_gib": round(plan.per_process / GIB, 3),
        "tensors_gib": round(tensors / GIB, 3),
        "rows": rows,
    }


def throughput(
    check: Check, name: str, ref: Path, splits: Path, labels: Path, max_length: int, **overrides: Any
) -> dict[str, Any]:
    """About `--steps` optimizer steps of the core on `ref`; throughput, MFU, memory against the plan."""
    rows = load_from_disk(str(splits))["train"].num_rows
    batch = int(overrides.get("batch_size", recipe_for(check).batch_size))
    target = check.opts.steps
    if target * batch <= rows:  # one epoch of a seeded sample
        overrides.update(epochs=1, max_train_samples=target * batch)
    else:
        overrides.update(epochs=math.ceil(target / math.ceil(rows / batch)), max_train_samples=None)
    p = recipe_for(check, patience=0, **overrides)
    base = BaseModelRef(model=str(ref))
    paths = paths_for(check.opts.work / name, splits, labels)
    meter = StepMeter(warmup=min(10, target // 10))
    if check.cuda:
        torch.cuda.reset_peak_memory_stats()
    s = recipe.setup(p, base, paths, check.log)
    trainer, out = recipe.train(p, s, paths, check.log, callbacks=[meter, NoCheckpoints()])
    peak = torch.cuda.max_memory_allocated() if check.cuda else None
    linear, layers, hidden = shape_of(s.model)
    history = epoch_history(trainer.state.log_history)
    flops = train_flops(linear, layers, hidden, meter.tokens, meter.tokens_sq)
    flops_padded = train_flops(linear, layers, hidden, meter.padded, meter.padded_sq)
    secs = meter.seconds or float("nan")
    achieved, achieved_padded = flops / secs / 1e12, flops_padded / secs / 1e12
    plan = planned(p, str(ref), max_length, labels, s.rt.device)
    figures = {
        "device": s.rt.device,
        "precision": s.rt.precision,
        "params": s.total,
        "linear_params": linear,
        "layers": layers,
        "hidden": hidden,
        "batch_size": p.batch_size,
        "max_length": max_length,
        "epochs": p.epochs,
        "train_rows": len(s.train),
        "steps": trainer.state.global_step,
        "timed_steps": meter.steps,
        "warmup_steps": meter.warmup,
        "samples_per_s": round(meter.samples / secs, 2),
        "tokens_per_s": round(meter.tokens / secs, 1),
        "padded_tokens_per_s": round(meter.padded / secs, 1),
        "mean_tokens_per_sample": round(meter.tokens / max(1, meter.samples), 1),
        "ms_per_step": round(1000 * secs / max(1, meter.steps), 2),
        "core_samples_per_s": round(trainer.progress.samples / trainer.progress.seconds, 2)
        if trainer.progress.seconds
        else None,
        "achieved_tflops": sig(achieved),
        "achieved_tflops_padded": sig(achieved_padded),
        "mfu": sig(achieved / check.spec_peak) if check.spec_peak else None,
        "mfu_padded": sig(achieved_padded / check.spec_peak) if check.spec_peak else None,
        "share_of_measured_matmul_peak": sig(achieved / check.matmul_peak) if check.matmul_peak else None,
        "peak_memory_allocated_gib": round(peak / GIB, 3) if peak is not None else None,
        "planned_memory": plan,
        "plan_tensors_over_measured": round(plan["tensors_gib"] * GIB / peak, 3) if peak else None,
        "last_epoch_validation": {
            k: v for k, v in (history[-1] if history else {}).items() if k.startswith("val_")
        },
        "train_runtime_s": round(float(out.metrics.get("train_runtime", 0.0)), 2),
    }
    del trainer, s
    return figures


def random_encoder(tokenizer_from: Path, out: Path, shape: dict[str, Any], seed: int) -> Path:
    """A BERT encoder of `shape` with random weights (no hub download is possible there) and the
    tokenizer of `tokenizer_from`, saved as a model folder the core loads like any base checkpoint."""
    tok = AutoTokenizer.from_pretrained(str(tokenizer_from))
    tok.save_pretrained(str(out))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **shape)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        BertModel(config).save_pretrained(str(out))
    return out


def accuracy(check: Check, ref: Path, splits: Path, labels: Path) -> dict[str, Any]:
    """`run_finetune` as the stage calls it, one epoch: the validation figures, the model saved."""
    p = recipe_for(check, epochs=1)
    paths = paths_for(check.opts.work / "accuracy", splits, labels)
    report = recipe.run_finetune(p, BaseModelRef(model=str(ref)), paths, check.log)
    assert report is not None  # one process: rank 0
    return {
        "base_model": str(ref),
        "precision": report["precision"],
        "epochs": report["epochs_run"],
        "train_rows": report["train_rows"],
        "validation_rows": report["validation_rows"],
        "validation_windows": report["validation_windows"],
        "validation": report["best_validation"],
        "train_samples_per_s": report["train_samples_per_s"],
        "saved": sorted(f.name for f in paths.out.iterdir()),
    }


def large_shape(overrides: str) -> dict[str, Any]:
    """BERT_LARGE with `key=value,...` overrides (the CPU test shrinks it)."""
    shape = dict(BERT_LARGE)
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        if key.strip() not in shape:
            raise SystemExit(f"--large-shape: unknown key {key!r}; known: {', '.join(shape)}")
        shape[key.strip()] = int(value)
    return shape


def run(opts: argparse.Namespace, boot: dict[str, Any]) -> dict[str, Any]:
    """The three runs; every figure printed and in `opts.out`/gpu_device_check.json."""
    if opts.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_device_check: torch sees no CUDA device; --device cpu runs the CPU path.")
    shutil.rmtree(opts.work, ignore_errors=True)  # a checkpoint left there would be resumed
    opts.work.mkdir(parents=True)
    check = Check(opts, boot)
    model = unpack(opts.model, opts.work / "carry")
    data = unpack(opts.data, opts.work / "carry")
    splits, labels = data / "splits", data / "labels.json"
    meta = json.loads((data / "meta.json").read_text()) if (data / "meta.json").is_file() else {}
    train = load_from_disk(str(splits))["train"]
    max_length = int(meta.get("max_length") or max(len(w) for row in train["windows"] for w in row))
    check.figures["data"] = {**meta, "splits": str(splits), "max_length": max_length}
    check.log.info(
        "device %s; bf16 peak %s TFLOP/s (spec), %s (measured)",
        check.name,
        check.spec_peak,
        check.matmul_peak,
    )

    check.run("minilm", lambda: throughput(check, "minilm", model, splits, labels, max_length))
    shape = large_shape(opts.large_shape)

    def large() -> dict[str, Any]:
        ref = random_encoder(model, opts.work / "large-base", shape, seed=0)
        lr = LARGE_LEARNING_RATE
        figures = throughput(
            check, "large", ref, splits, labels, max_length, batch_size=opts.large_batch, learning_rate=lr
        )
        return {"shape": shape, **figures}

    check.run("large", large)
    check.run("accuracy", lambda: accuracy(check, model, splits, labels))
    check.figures["unmeasured"] = unmeasured(check)
    check.figures["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    check.save()
    print_summary(check.figures, opts.out / "gpu_device_check.json")
    return check.figures


def unmeasured(check: Check) -> list[str]:
    """The figures this run could not give, and why."""
    missing = []
    if not check.cuda:
        missing.append(
            "GPU figures (MFU, TFLOP/s against a GPU peak, max_memory_allocated against the plan): "
            "no CUDA device"
        )
    elif check.spec_peak is None:
        missing.append(
            f"MFU: no data-sheet bf16 peak for {check.name!r} (bench/gpu_check.py BF16_PEAK_TFLOPS) "
            "or not bf16"
        )
    for name, r in check.figures["runs"].items():
        if "error" in r:
            missing.append(f"{name}: failed ({r['error']})")
    return missing


def print_summary(figures: dict[str, Any], path: Path) -> None:
    """The headline figures, one line a run; the whole of them in `path`."""
    m = figures["machine"]
    print(f"\ngpu_device_check on {m['device']} (torch {m['torch']}, CUDA {m['cuda']}):", flush=True)
    for name, r in figures["runs"].items():
        if "error" in r:
            print(f"  {name:<9} FAILED {r['error']}")
        elif name == "accuracy":
            v = r["validation"]
            print(
                f"  {name:<9} after 1 epoch: validation accuracy {v['accuracy']:.4f}, "
                f"macro-F1 {v['macro_f1']:.4f}"
            )
        else:
            mem = r["peak_memory_allocated_gib"]
            plan = r["planned_memory"]["tensors_gib"]
            print(
                f"  {name:<9} {r['samples_per_s']} samples/s, {r['tokens_per_s']} tokens/s, "
                f"{r['achieved_tflops']} TFLOP/s, MFU {r['mfu']}; peak memory {mem} GiB vs plan {plan} GiB "
                f"(tensors); {r['timed_steps']} steps timed"
            )
    for line in figures.get("unmeasured", []):
        print(f"  unmeasured: {line}")
    print(f"  all figures: {path}", flush=True)
