"""Resumable training: a run's fingerprint, its complete checkpoints, and which one to resume from.

    fingerprint = run_fingerprint(params, base, splits_dir, labels_path)
    resume = prepare_checkpoints(Path("checkpoints/finetune"), fingerprint, log)   # None: start afresh

A checkpoint folder belongs to the run whose fingerprint (params, base model, data) it records; another
run clears it. A checkpoint counts once `trainer_state.json` (the Trainer writes it last) parses and
the weights and optimizer state are there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path

from stages.config.finetune import BaseModelRef, FinetuneParams
from stages.core.io import read_json, write_json
from stages.model.sharding import sharded_checkpoint_complete

FINGERPRINT_FILE = "ftpipe_fingerprint.json"
_CKPT = re.compile(r"^checkpoint-(\d+)$")


def run_fingerprint(p: FinetuneParams, base: BaseModelRef, splits_dir: Path, labels_path: Path) -> str:
    """What a checkpoint must match to be resumed: the params, the base model and the data, hashed."""
    h = hashlib.sha256()
    h.update(json.dumps({"finetune": p.record(), "base": base.model_dump()}, sort_keys=True).encode())
    h.update(labels_path.read_bytes())
    for f in sorted(x for x in splits_dir.rglob("*") if x.is_file()):
        h.update(str(f.relative_to(splits_dir)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def checkpoint_complete(ckpt: Path) -> bool:
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
    return next((d for _, d in found if checkpoint_complete(d)), None)


def prepare_checkpoints(ckpt_dir: Path, fingerprint: str, log: logging.Logger) -> Path | None:
    """Return the checkpoint to resume from; clear checkpoints left by a run with other params or data."""
    marker = ckpt_dir / FINGERPRINT_FILE
    if ckpt_dir.exists() and any(ckpt_dir.iterdir()):
        old = read_json(marker).get("fingerprint") if marker.is_file() else None
        if old == fingerprint:
            for d in ckpt_dir.iterdir():  # a half-written checkpoint from a kill mid-save is useless
                if d.is_dir() and _CKPT.match(d.name) and not checkpoint_complete(d):
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
