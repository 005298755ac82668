"""The flow's params: its own `retrain` section, and `-S` overrides applied the way `dvc exp run -S` does.

The flow retries nothing itself (docs/orchestration.md): its section holds the
schedule only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from dvc.exceptions import InvalidArgumentError
from dvc.utils.cli_parse import to_path_overrides
from dvc.utils.hydra import apply_overrides as dvc_apply_overrides

from flows.check import ParamsProblems, params_problems
from flows.dag import RetrainError
from stages.config.params import read_params_file, validate_section
from stages.config.retrain import RetrainParams

SECTION = "retrain"


def load_retrain_params(root: str | Path) -> RetrainParams:
    """The `retrain` section of ROOT/params.yaml; defaults where the file or section is absent."""
    path = Path(root) / "params.yaml"
    if not path.is_file():
        return RetrainParams()
    data = read_params_file(path)
    return validate_section(SECTION, data.get(SECTION), RetrainParams, source=str(path))


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return "(absent)"
        data = data[part]
    return data


def apply_overrides(root: str | Path, overrides: list[str], keep: bool = True) -> list[dict[str, Any]]:
    """Apply `key=value` overrides to the params files the way `dvc exp run -S` does, then check them.

    This is DVC's own code path (`dvc.utils.hydra.apply_overrides`, Hydra override grammar): the value
    is parsed as YAML-like, `+key=value` adds a new key, `~key` removes one, `file.yaml:key=value` picks
    another params file. Like `dvc exp run -S`, it edits the file in the workspace (comments kept), so
    the new values are what dvc.lock records. Returns [{file, key, old, new}] for the summary.

    Then params.yaml is checked (`ftpipe check`, with no overrides too): on a problem, or when an
    override cannot be applied, every file is put back byte for byte and ParamsProblems (one line per
    problem) or RetrainError is raised. `keep=False` always puts them back: a trial, the check that
    `ftpipe run` makes before the flow starts. Callers hold the workspace lock (flows/lock.py).
    """
    root = Path(root)
    for item in overrides:
        key = item.partition(":")[2] if ":" in item.partition("=")[0] else item
        if "=" not in key and not key.startswith("~"):
            raise RetrainError(
                f"override `{item}` must look like key=value (e.g. clean.min_words=5), like `dvc exp run -S`."
            )
    changes = []
    originals: dict[Path, bytes] = {}
    try:
        for file, items in to_path_overrides(overrides).items():
            path = root / file
            if not path.is_file():
                raise RetrainError(f"override {items}: params file {path} does not exist.")
            originals[path] = path.read_bytes()
            before = yaml.safe_load(originals[path]) or {}
            try:
                dvc_apply_overrides(path, items)
            except InvalidArgumentError as exc:
                cause = str(exc.__cause__ or exc).replace("\n", " ")
                raise RetrainError(f"cannot apply override {items} to {file}: {cause}") from None
            after = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for item in items:
                key = item.partition("=")[0].lstrip("+~")
                changes.append(
                    {"file": file, "key": key, "old": _lookup(before, key), "new": _lookup(after, key)}
                )
        if problems := params_problems(root):
            raise ParamsProblems(problems)
    except BaseException:
        _restore(originals)
        raise
    if not keep:
        _restore(originals)
    return changes


def _restore(originals: dict[Path, bytes]) -> None:
    for path, text in originals.items():
        path.write_bytes(text)
