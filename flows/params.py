"""The flow's params: its own `retrain` section, the check of params.yaml, `-S` overrides for one run.

`ftpipe run -S finetune.epochs=1` parses and applies the override the way `dvc exp run -S` does (DVC's
own Hydra grammar), writes params.yaml with a round-trip writer that touches only the overridden keys
(comments, quotes, `null` and flow lists stay as they were), and puts the original bytes back when the
run ends: success, failure, Ctrl-C or SIGTERM. dvc.lock records the overridden values for that run (what
the model was really trained with); the next plain run sees params.yaml differ from dvc.lock and runs the
affected stages again with the file's values. A scheduled run never inherits a manual run's overrides.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import yaml
from dvc.exceptions import InvalidArgumentError
from dvc.utils.cli_parse import to_path_overrides
from dvc.utils.hydra import apply_overrides as dvc_apply_overrides
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from flows.dag import RetrainError
from stages.check import check_file
from stages.config.params import ParamsError, lookup, read_params_file, validate_section
from stages.config.retrain import RetrainParams
from stages.config.sections import ALL_MODELS

SECTION = "retrain"
ABSENT = "(absent)"
# the original bytes of the files a run overrode, until it puts them back: what a killed run left
BACKUP_FILE = Path(".dvc") / "tmp" / "ftpipe-overrides.json"
_written: dict[Path, bytes] = {}  # what the overrides wrote, per file: the backup's check before a put-back


class Override(TypedDict):
    """One `-S` override as the summary shows it: the params file, the dotted key, the value before and after."""

    file: str
    key: str
    old: object  # a YAML value, or ABSENT where the key was not there
    new: object


class ParamsProblems(ParamsError):
    """params.yaml does not pass the check; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def params_problems(root: str | Path, params: str | Path | None = None) -> list[str]:
    """Every problem of ROOT/params.yaml, or of `params` (against ROOT/dvc.yaml's tracked keys), one line each."""
    root = Path(root).resolve()
    if root.is_relative_to(Path.cwd()):  # name the file as the user would: params.yaml from the root
        root = root.relative_to(Path.cwd())
    return check_file(root / "params.yaml" if params is None else Path(params), root / "dvc.yaml", ALL_MODELS)


def load_retrain_params(root: str | Path) -> RetrainParams:
    """The `retrain` section of ROOT/params.yaml; defaults where the file or section is absent."""
    path = Path(root) / "params.yaml"
    if not path.is_file():
        return RetrainParams()
    data = read_params_file(path)
    return validate_section(SECTION, data.get(SECTION), RetrainParams, source=str(path))


def _round_trip_yaml() -> YAML:
    """ruamel's round-trip YAML, set up to give back the untouched lines byte for byte (null stays null)."""
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096  # never fold a long value or comment onto a second line
    y.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return y


def edit_yaml(text: str, values: dict[str, object]) -> str:
    """TEXT with each dotted key set to its value (ABSENT: removed); every other line kept as it was."""
    y = _round_trip_yaml()
    doc = y.load(text)
    if doc is None:
        doc = y.load("{}\n")
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = doc
        for part in parents:
            if part not in node:
                node[part] = CommentedMap()
            node = node[part]
        if value is ABSENT:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


class OverrideError(ParamsError):
    """A `-S` override that cannot be applied: bad input, said in one line (exit 2, as a bad params value)."""


def _check_syntax(overrides: list[str]) -> None:
    for item in overrides:
        key = item.partition(":")[2] if ":" in item.partition("=")[0] else item
        if "=" not in key and not key.startswith("~"):
            raise OverrideError(
                f"override `{item}` must look like key=value (e.g. clean.min_words=5), like `dvc exp run -S`."
            )


def _dotted_keys(data: object, prefix: str = "") -> list[str]:
    """Every dotted key of a nested mapping (`finetune.epochs`, `register.gate.margin`, ...)."""
    if not isinstance(data, dict):
        return []
    keys: list[str] = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        keys += [key, *_dotted_keys(v, f"{key}.")]
    return keys


def _refuse_unknown_keys(file: str, items: list[str], before: object) -> None:
    """An override of a key the file does not have names the nearest keys it has (Hydra would only say
    "To append to your config use +key=value", which then fails the params check)."""
    known = _dotted_keys(before)
    for item in items:
        key = item.partition("=")[0]
        if key.startswith(("+", "~")) or lookup(before, key, ABSENT) is not ABSENT:
            continue
        nearest = difflib.get_close_matches(key, known, n=3, cutoff=0.8)
        hint = (
            f"did you mean {' or '.join(f'`{k}`' for k in nearest)}?"
            if nearest
            else "`ftpipe check` and docs/params.md list the keys."
        )
        raise OverrideError(f"-S `{item}`: {file} has no key `{key}`; {hint}")


_HYDRA_HINTS = re.compile(r"\s*(To append to your config use \S+|See https?://\S+ for details)\.?")


def _override_file(root: Path, file: str, items: list[str], originals: dict[Path, bytes]) -> list[Override]:
    """Apply ITEMS to one params file (DVC's grammar on a scratch copy, then a round-trip write)."""
    path = root / file
    if not path.is_file():
        raise RetrainError(f"override {items}: params file {path} does not exist.")
    original = path.read_bytes()
    before = yaml.safe_load(original) or {}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / path.name
        scratch.write_bytes(original)
        _refuse_unknown_keys(file, items, before)
        try:
            dvc_apply_overrides(scratch, items)
        except InvalidArgumentError as exc:
            cause = _HYDRA_HINTS.sub("", str(exc.__cause__ or exc).replace("\n", " ")).strip()
            raise OverrideError(
                f"cannot apply override {items} to {file}: {cause}. Quote a value the shell would split "
                "or a list, e.g. -S 'label.labels=[a,b]'."
            ) from None
        after = yaml.safe_load(scratch.read_bytes()) or {}
        keys = [item.partition("=")[0].lstrip("+~") for item in items]
        if path.suffix.lower() in (".yaml", ".yml"):
            new = edit_yaml(original.decode("utf-8"), {k: lookup(after, k, ABSENT) for k in keys}).encode(
                "utf-8"
            )
        else:  # a JSON/TOML/Python params file: DVC's writer (the file is put back after the run anyway)
            new = scratch.read_bytes()
    originals.setdefault(path, original)
    _written[path] = new
    _save_backup(root, originals, _written)
    path.write_bytes(new)
    return [
        Override(file=file, key=k, old=lookup(before, k, ABSENT), new=lookup(after, k, ABSENT)) for k in keys
    ]


def _write(root: Path, overrides: list[str], originals: dict[Path, bytes]) -> list[Override]:
    _check_syntax(overrides)
    changes: list[Override] = []
    for file, items in to_path_overrides(overrides).items():
        changes += _override_file(root, file, items, originals)
    if problems := params_problems(root):
        raise ParamsProblems(problems)
    return changes


@contextlib.contextmanager
def overridden_params(root: str | Path, overrides: list[str]) -> Iterator[list[Override]]:
    """The params files with OVERRIDES applied for the block, then put back byte for byte.

    Yields [{file, key, old, new}] for the summary. Raises RetrainError for an override that cannot be
    applied and ParamsProblems (one line per problem) when the result fails `ftpipe check`; the files
    are put back in every case. Callers hold the workspace lock (flows/lock.py): nobody else sees them.
    """
    root = Path(root)
    restore_killed_run(root)
    originals: dict[Path, bytes] = {}
    try:
        yield _write(root, overrides, originals) if overrides else []
    finally:
        _restore(root, originals)


def apply_overrides(root: str | Path, overrides: list[str], keep: bool = True) -> list[Override]:
    """Apply OVERRIDES and check the result; `keep=False` puts the files back (a trial). On an error the
    files are always put back. Returns [{file, key, old, new}]. Callers hold the workspace lock.

    A killed run's overrides are put back first: else the trial would save them as the original."""
    root = Path(root)
    restore_killed_run(root)
    originals: dict[Path, bytes] = {}
    try:
        changes = _write(root, overrides, originals)
    except BaseException:
        _restore(root, originals)
        raise
    if keep:
        (root / BACKUP_FILE).unlink(missing_ok=True)  # kept on purpose: nothing to put back later
        for path in originals:
            _written.pop(path, None)
    else:
        _restore(root, originals)
    return changes


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _save_backup(root: Path, originals: dict[Path, bytes], written: dict[Path, bytes]) -> None:
    """Record the original bytes (and a digest of what replaces them) before a file is overwritten, so
    that a run killed with SIGKILL (no `finally`) has its overrides put back by the next run."""
    path = root / BACKUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        str(p.relative_to(root)): [b.decode("utf-8"), _digest(written.get(p, b))]
        for p, b in originals.items()
    }
    path.write_text(json.dumps(record))


def _restore(root: Path, originals: dict[Path, bytes]) -> None:
    for path, data in originals.items():
        path.write_bytes(data)
        _written.pop(path, None)
    (root / BACKUP_FILE).unlink(missing_ok=True)


def restore_killed_run(root: str | Path) -> list[str]:
    """Put back the params files that a killed run left overridden; the files it put back."""
    root = Path(root)
    path = root / BACKUP_FILE
    if not path.is_file():
        return []
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    put_back = []
    for rel, (text, overridden) in saved.items():
        target = root / rel
        if target.is_file() and _digest(target.read_bytes()) == overridden:  # not edited since: put back
            target.write_bytes(text.encode("utf-8"))
            put_back.append(rel)
        else:
            print(f"ftpipe: {rel} changed after a killed run overrode it; left as it is.", file=sys.stderr)
    path.unlink(missing_ok=True)
    if put_back:
        print(
            f"ftpipe: a run killed before it finished left its -S overrides in {', '.join(put_back)}; "
            "put the original file(s) back.",
            file=sys.stderr,
        )
    return put_back
