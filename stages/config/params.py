"""Typed, validated loading of one `params.yaml` section per stage.

Each stage declares a pydantic model for its own section and calls `load_section`, which stops the
stage before any work with one message naming the key, the bad value and what is allowed.

Defaults live in the params classes only; the shipped params.yaml holds the same values (a test,
tests/stages/config/test_params.py, compares every key), so a class's default is what a user gets.

A stage that needs another stage's keys reads them one way: `load_section(that_section, ThatClass,
path)`, with the class of the stage that owns the section (validated exactly as that stage validates
it; a class read by several stages lives in stages/common, e.g. `TokenizeParams` in
stages/config/tokenize.py), never a raw dict, a looser second class or a command-line copy; and
it lists the keys it uses under its `params:` in dvc.yaml.
"""

from __future__ import annotations

import reprlib
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

DEFAULT_PARAMS_PATH = Path("params.yaml")
# Bounds on what reading params.yaml may cost, whatever the file holds: a real params file is a few KB
# with at most a handful of anchors, nested three or four levels deep.
MAX_PARAMS_BYTES = 16 << 20
MAX_DEPTH = 50  # nested mappings / lists
MAX_NODES = 100_000  # values once every alias is expanded (an alias bomb is billions)
MAX_SHOWN_CHARS = 200  # of a value quoted in an error message

_SHOW = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother, _SHOW.maxlong = 3, MAX_SHOWN_CHARS, MAX_SHOWN_CHARS, 60
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = _SHOW.maxset = 8


def shown(value: object) -> str:
    """`repr(value)` cut to a few hundred characters, without walking the whole of a huge or shared value."""
    text = _SHOW.repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


class ParamsError(ValueError):
    """A `params.yaml` section that cannot be used; the message says which key and how to fix it."""


class StageParams(BaseModel):
    """Base for a stage's params section: unknown keys are errors, values are never coerced silently."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


P = TypeVar("P", bound=BaseModel)


def _describe_error(section: str, model_cls: type[BaseModel], err: ErrorDetails) -> str:
    if not err["loc"]:  # a check of the section as a whole (several keys, a renamed key)
        return f"section `{section}`: {err['msg']}"
    key = ".".join([section, *(str(p) for p in err["loc"])])
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model_cls, err["loc"][:-1])
        return f"unknown key `{key}` (value {shown(err['input'])}); allowed keys here: {', '.join(allowed)}"
    if err["type"] == "missing":
        return f"missing key `{key}`; it is required"
    return f"`{key}` = {shown(err['input'])} is invalid: {err['msg']}"


def _allowed_keys(model_cls: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    cls: object = model_cls  # a params class, then the annotation of each field along `loc`
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return []
        cls = field.annotation
    return sorted(getattr(cls, "model_fields", {}).keys())


def validate_section(section: str, data: object, model_cls: type[P], source: str = "params.yaml") -> P:
    """Validate one section's mapping into `model_cls`; raise ParamsError naming every bad key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(
            f"{source}: section `{section}` must be a mapping of keys to values, got "
            f"{type(data).__name__} {shown(data)}. Fix the `{section}:` block in {source}."
        )
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe_error(section, model_cls, e) for e in exc.errors())
        raise ParamsError(
            f"{source}: invalid params in section `{section}`: {problems}. "
            f"Edit {source} (or the `-S` override) and run the stage again; no work was done."
        ) from None


def lookup(data: object, dotted: str, default: object = None) -> object:
    """The value at a dotted key (`finetune.epochs`) in nested mappings; `default` when a part is missing."""
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return default
        data = data[part]
    return data


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, first: int, second: int):
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class _TooBig(yaml.YAMLError):
    """The file nests deeper than MAX_DEPTH or expands (through aliases) to more than MAX_NODES values."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key written twice in one mapping (as DVC's ruamel loader does), and
    a document nested deeper than MAX_DEPTH or larger than MAX_NODES values with every alias expanded."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._parents: dict[int, tuple[str, yaml.Node]] = {}  # id(value node) -> (its key, its mapping)
        self._size: dict[int, int] = {}  # id(node) -> its values once expanded (an alias counts in full)
        self._depth = 0

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(".".join([*self._path(node), str(key)]), seen[key], line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def _path(self, node: yaml.Node) -> list[str]:
        """The dotted keys leading to `node` from the document root."""
        path: list[str] = []
        target = node
        while True:
            parent = self._parents.get(id(target))
            if parent is None:
                return path[::-1]
            key, target = parent
            path.append(key)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooBig(f"values nested more than {MAX_DEPTH} deep")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.SequenceNode | yaml.MappingNode) and id(node) not in self._size:
            children = node.value if isinstance(node, yaml.SequenceNode) else [v for _, v in node.value]
            size = 1 + sum(self._size.get(id(child), 1) for child in children)
            if size > MAX_NODES:
                raise _TooBig(
                    f"more than {MAX_NODES:,} values, counting each use of an alias (`*name`) in full"
                )
            self._size[id(node)] = size
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    self._parents[id(value_node)] = (str(key_node.value), node)
        return node


def read_params_file(path: str | Path = DEFAULT_PARAMS_PATH) -> dict[str, Any]:
    """Read the whole params file as a mapping (for flows and reports, never handed to a stage)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found. Run from the repository root.")
    if path.stat().st_size > MAX_PARAMS_BYTES:
        raise ParamsError(
            f"{path}: {path.stat().st_size:,} bytes, more than a params file can be ({MAX_PARAMS_BYTES:,}). "
            "It holds one section per stage; put data in files under data/external/ instead."
        )
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except (_TooBig, RecursionError) as exc:  # PyYAML's scanner recurses on deep flow nesting
        why = str(exc) if isinstance(exc, _TooBig) else f"values nested more than {MAX_DEPTH} deep"
        raise ParamsError(
            f"{path}: refused unread: {why}. A params file holds plain keys a few levels deep; "
            "write the values out (no aliases of aliases) and nest less."
        ) from None
    except _DuplicateKey as exc:
        raise ParamsError(
            f"{path}: `{exc.key}` is written twice (line {exc.first} and line {exc.second}); YAML keeps "
            "only the last and DVC refuses the file. Delete one of the two lines."
        ) from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc}). Fix the syntax.") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level must be a mapping of stage sections.")
    return data


def load_section(section: str, model_cls: type[P], path: str | Path = DEFAULT_PARAMS_PATH) -> P:
    """Load and validate only `section` of the params file."""
    data = read_params_file(path)
    if section not in data:
        raise ParamsError(
            f"{path}: section `{section}` is missing. Add a `{section}:` block (docs/params.md lists its keys)."
        )
    return validate_section(section, data[section], model_cls, source=str(path))
