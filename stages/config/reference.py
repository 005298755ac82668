"""docs/params.md, generated from the params models: the one place each key is described.

    python -m stages.config.reference --out docs/params.md     # `make docs`; tests/stages/config checks it is fresh

Each row gives a key's type, its default, its bounds and the `description` of its pydantic Field, read from
the classes in `stages.config.sections` (and the flow's `retrain` section), so the docs cannot drift from
what the stages validate.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from stages.config.sections import ALL_MODELS
from stages.core.io import atomic_file

HEADER = """# Params

Every key of `params.yaml`, one section per stage (and `retrain` for the Prefect flow). Each stage validates
its section when it loads it, and the first stage, `check`, validates the whole file before anything runs:
an unknown key, a wrong type or a value out of bounds stops the run with the key and the fix. Override a
key for one run with `ftpipe run -S section.key=value` (the file is left as it is), or edit `params.yaml`
and run `dvc repro`: DVC reruns only the stages that track the changed key.

This page is generated from the params models in `stages/config/` (`make docs`); a test fails when it is
stale. Edit the `description=` of a field there, not this page.
"""

_BOUNDS = ((at.Ge, "≥", "ge"), (at.Gt, ">", "gt"), (at.Le, "≤", "le"), (at.Lt, "<", "lt"))


def type_name(annotation: Any) -> str:
    """A short, readable type: `int`, `float | null`, `head | tail`, `list[str]`, `{str: str}`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join("null" if a is type(None) else type_name(a) for a in args)
    if origin is list:
        return f"list[{type_name(args[0])}]"
    if origin is dict:
        return f"{{{type_name(args[0])}: {type_name(args[1])}}}"
    return getattr(annotation, "__name__", str(annotation))


def bounds(field: FieldInfo) -> str:
    """The field's constraints as text: `≥ 1, ≤ 20`, `pattern ^[A-Z]+$`, `min length 1`."""
    parts = []
    for meta in field.metadata:
        for kind, sign, attr in _BOUNDS:
            if isinstance(meta, kind):
                parts.append(f"{sign} {getattr(meta, attr)}")
        if isinstance(meta, at.MinLen):
            parts.append(f"min length {meta.min_length}")
        pattern = getattr(meta, "pattern", None)
        if pattern:
            parts.append(f"pattern `{pattern}`")
    return ", ".join(parts)


def default_text(field: FieldInfo) -> str:
    """The default as it would be written in params.yaml (JSON-style: null, true, [cp1252])."""
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(below)"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, str, str]]:
    """(key, type, default, bounds, description) for every field, nested models flattened as `a.b.c`."""
    out = []
    nested = []
    for name, field in model.model_fields.items():
        key = f"{prefix}.{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.append((key, "section", "(below)", "", field.description or ""))
            nested.append((annotation, key))
            continue
        out.append(
            (key, type_name(annotation), default_text(field), bounds(field), _cell(field.description or ""))
        )
    for sub, key in nested:
        out.extend(rows(sub, key))
    return out


def render(models: Mapping[str, type[BaseModel]]) -> str:
    """The whole page: the header, then one table per section in params.yaml order."""
    parts = [HEADER]
    for section, model in models.items():
        doc = (model.__doc__ or "").strip().splitlines()[0]
        parts.append(f"\n## {section}\n\n{doc} Class: `{model.__module__}.{model.__name__}`.\n")
        parts.append("\n| key | type | default | bounds | what it does |\n|---|---|---|---|---|\n")
        for key, typ, default, bound, desc in rows(model, section):
            parts.append(f"| `{key}` | {typ} | {default} | {bound} | {desc} |\n")
    return "".join(parts)


def undocumented(models: Mapping[str, type[BaseModel]]) -> list[str]:
    """Keys whose Field has no description (the test keeps this empty)."""
    return [key for section, m in models.items() for key, *_, desc in rows(m, section) if not desc.strip()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/params.md"))
    args = ap.parse_args(argv)
    with atomic_file(args.out) as fh:
        fh.write(render(ALL_MODELS))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
