"""Where a model came from: its identity hash and the lineage tags (the record of what it trained on is
stages/data/trained_on.py).

- `model_hash`: sha256 over the weight files and config.json; the register stage's idempotency key.
- `lineage_tags`: git commit and dirtiness, dvc.lock hashes of the data and model outputs, label-map and
  params hashes, library versions; written on the registration run and on the model version.

Pure apart from reading files and asking git; no MLflow import.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from stages.model.resolve import weights_sha256
from stages.registry import tags as registry_tags

LIBRARIES = ("torch", "transformers", "mlflow")
_SECRET_KEY = re.compile(r"(secret|passw|api_?key|access_?key|credential|auth_?token|hf_token|^token$)", re.I)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_hash(obj: object) -> str:
    """sha256 of the JSON with sorted keys: equal for equal content, whatever the key order."""
    return sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode())


def model_hash(model_dir: str | Path) -> str:
    """sha256 over the weight files and config.json (names and contents): the model's identity."""
    digest = weights_sha256(Path(model_dir))
    if digest is None:
        raise FileNotFoundError(
            f"{model_dir}: no weights (*.safetensors or pytorch_model*.bin) to register; run finetune."
        )
    return digest


def flatten(d: object, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    if not isinstance(d, dict):
        return {prefix: d} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def loggable_params(params: Mapping[str, object]) -> dict[str, str]:
    """params.yaml flattened to strings, with anything that looks like a secret left out."""
    out = {}
    for k, v in flatten(params).items():
        if any(_SECRET_KEY.search(part) for part in k.split(".")):
            continue
        s = json.dumps(v) if isinstance(v, list | dict) else str(v)
        out[k] = s[:6000]
    return out


def _git(repo: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.rstrip() if proc.returncode == 0 else None


def dvc_lock_hashes(lock_path: str | Path) -> dict[str, str]:
    """`path -> md5` of the data/ and models/ outputs recorded in dvc.lock (empty when there is none)."""
    lock_path = Path(lock_path)
    if not lock_path.is_file():
        return {}
    lock = yaml.safe_load(lock_path.read_text(encoding="utf-8"))
    stages = lock.get("stages") if isinstance(lock, dict) else None
    out = {}
    for stage in (stages or {}).values():
        for o in (stage.get("outs") or []) if isinstance(stage, dict) else []:
            path = str(o.get("path", ""))
            if path.startswith(("data/", "models/")) and (o.get("md5") or o.get("hash")):
                out[path] = str(o.get("md5") or o.get("hash"))
    return out


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def lineage_tags(
    repo: Path, lock_path: str | Path, labels: list[str], params: dict[str, Any], mhash: str
) -> dict[str, str]:
    """Tags that say where the model came from, for the run and the model version."""
    commit = _git(repo, "rev-parse", "HEAD")
    # dirty = code or params differ from the commit; dvc.lock and reports/ are rewritten by the run itself
    status = _git(repo, "status", "--porcelain", "--", ".", ":(exclude)dvc.lock", ":(exclude)reports")
    changed = [line[3:] for line in (status or "").splitlines()]
    tags = {
        registry_tags.MODEL_HASH: mhash,
        registry_tags.GIT_COMMIT: commit or "unknown",
        registry_tags.GIT_DIRTY: "unknown" if status is None else str(bool(changed)).lower(),
        registry_tags.LABELS: json.dumps(labels),
        registry_tags.LABELS_SHA: canonical_hash({str(i): n for i, n in enumerate(labels)}),
        registry_tags.PARAMS_SHA: canonical_hash(params),
        **{f"{registry_tags.LIB_PREFIX}{lib}": _version(lib) for lib in LIBRARIES},
        f"{registry_tags.LIB_PREFIX}python": platform.python_version(),
    }
    if changed:
        tags[registry_tags.GIT_DIRTY_FILES] = ", ".join(changed[:20]) + (
            f" and {len(changed) - 20} more" if len(changed) > 20 else ""
        )
    for path, md5 in dvc_lock_hashes(lock_path).items():
        tags[f"{registry_tags.DVC_PREFIX}{path}"] = md5
    return tags
