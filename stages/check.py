"""check: every params.yaml section against the typed model its stage loads, before any stage runs.

    python -m stages.check --report reports/check.json     # dvc.yaml's first stage; `ftpipe check` by hand

DVC removes a stage's outputs before it runs the stage's command, so a stage that stops on a bad value of
its own params has already cost the user its previous outputs (a negative `finetune.learning_rate` used
to delete models/model). This stage is the root of the DAG instead: it tracks the whole params.yaml (any
change, an unknown key or section included, reruns it), ingest depends on its report (so every other
stage runs after it), and a problem stops `dvc repro` before any other stage is touched. It prints one
line per problem and exits 2. Its report holds no param values, so a change that passes the check
reruns nothing downstream of it by itself.

Checked: each stage's section against its params class (unknown keys, wrong types, out-of-range values);
a section that neither a params class nor dvc.yaml knows; every params key dvc.yaml tracks being present
(DVC runs a stage whose tracked key is missing and fails only afterwards); `ingest.source` lying inside
the data input dvc.yaml tracks for ingest (data/external), since DVC would not see any other file change.
The params classes come from stages/config (`sections.STAGE_MODELS`), not from the stage modules. The flow's own `retrain` section is validated by `ftpipe check` and `ftpipe run`
(flows/commands/check.py), which know its class.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from stages.config.params import (
    DEFAULT_PARAMS_PATH,
    ParamsError,
    _describe_error,
    lookup,
    read_params_file,
    shown,
)
from stages.config.paths import add_path_args
from stages.config.sections import FLOW_SECTIONS, STAGE_MODELS
from stages.core.io import write_json

_ABSENT = object()  # `lookup`'s default: a key whose value is null is present


def tracked_keys(dvc_yaml: str | Path, params_file: str = "params.yaml") -> dict[str, list[str]]:
    """Each params key that dvc.yaml's stages track in `params_file` -> the stages tracking it.

    A whole-file entry (`- params.yaml:`) names no key. A missing or unreadable dvc.yaml gives {}: DVC
    reports that one itself.
    """
    try:
        data = yaml.safe_load(Path(dvc_yaml).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    tracked: dict[str, list[str]] = {}
    stages = data.get("stages") if isinstance(data, dict) else None
    for name, stage in (stages if isinstance(stages, dict) else {}).items():
        entries = stage.get("params") if isinstance(stage, dict) else None
        for entry in entries or []:
            if isinstance(entry, str):
                keys = [entry]
            elif isinstance(entry, dict):
                keys = [str(k) for file, ks in entry.items() if file == params_file for k in ks or []]
            else:
                keys = []
            for key in keys:
                tracked.setdefault(key, []).append(str(name))
    return tracked


def section_problems(section: str, data: object, model_cls: type[BaseModel]) -> list[str]:
    """Every problem of one section's mapping, one message each (the stage's own wording); [] if none."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return [
            f"section `{section}` must be a mapping of keys to values, got {type(data).__name__} {shown(data)}"
        ]
    try:
        model_cls.model_validate(data)
    except ValidationError as exc:
        return [
            f"section `{section}`: {e['msg']}" if not e["loc"] else _describe_error(section, model_cls, e)
            for e in exc.errors()  # an empty loc is a check across keys: name the section, not its value
        ]
    return []


def check_params(
    data: object,
    tracked: dict[str, list[str]] | None = None,
    models: dict[str, type[BaseModel]] | None = None,
) -> list[str]:
    """Every problem of a whole params mapping, one message each, in file order; [] when it is clean.

    `tracked`: dvc.yaml's tracked keys (`tracked_keys`); `models`: section -> params class
    (STAGE_MODELS by default). A section is known when it has a class, is a FLOW_SECTIONS entry or holds
    a key dvc.yaml tracks; it is required when dvc.yaml tracks a key in it.
    """
    models = STAGE_MODELS if models is None else models
    tracked = tracked or {}
    if not isinstance(data, dict):
        return ["the top level must be a mapping of sections (`ingest:`, `clean:`, ...)"]
    tracked_sections = {key.split(".")[0]: stages for key, stages in tracked.items()}
    known = sorted(set(models) | set(FLOW_SECTIONS) | set(tracked_sections))
    problems: list[str] = []
    for section in data:
        if section in models:
            problems += section_problems(str(section), data[section], models[section])
        elif section not in known:
            problems.append(f"unknown section `{section}`; the sections are: {', '.join(known)}")
        for key, stages in tracked.items():
            missing = key.split(".")[0] == section and lookup(data, key, _ABSENT) is _ABSENT
            if missing and not any(f"`{key}`" in p for p in problems):  # a required field: once
                problems.append(
                    f"`{key}` is missing; dvc.yaml's stage `{stages[0]}` tracks it (DVC would run that "
                    "stage and fail only after removing its outputs)"
                )
    for section, stages in tracked_sections.items():
        if section not in data:
            problems.append(
                f"section `{section}` is missing; dvc.yaml's stage `{stages[0]}` tracks keys in it. "
                f"Add a `{section}:` block (docs/params.md lists its keys)."
            )
    return problems if problems else task_problems(data)


SET_ONLY_METRICS = ("micro_f1", "micro_precision", "micro_recall", "subset_accuracy")


def task_problems(data: dict[Any, Any]) -> list[str]:
    """Keys that only mean something for label sets, set while `label.task` is single_label (each would
    otherwise stop a stage later, after the ones before it ran)."""
    if lookup(data, "label.task", "single_label") == "multi_label":
        return []
    found = [
        (key, value)
        for key, value in (
            ("ingest.label_separator", lookup(data, "ingest.label_separator")),
            ("ingest.label_columns", lookup(data, "ingest.label_columns")),
            ("finetune.metric", lookup(data, "finetune.metric")),
            ("register.gate.primary_metric", lookup(data, "register.gate.primary_metric")),
        )
        if value is not None and (not key.endswith("metric") or value in SET_ONLY_METRICS)
    ]
    return [
        f"`{key}` = {shown(value)} is for label sets, but `label.task` is single_label: set label.task to "
        f"multi_label, or {'remove the key' if key.startswith('ingest') else 'pick a single-label metric'}"
        for key, value in found
    ]


_WILDCARD = re.compile(r"[*?\[]")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def ingest_inputs(dvc_yaml: str | Path) -> list[str]:
    """The data folders and files dvc.yaml lists as ingest's deps (not code, not another stage's output)."""
    try:
        stages = (yaml.safe_load(Path(dvc_yaml).read_text(encoding="utf-8")) or {}).get("stages") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return []
    produced: set[str] = set()
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in (stage or {}).get(kind) or []:
                produced |= set(entry) if isinstance(entry, dict) else {str(entry)}
    deps = (stages.get("ingest") or {}).get("deps") or []
    return [str(d) for d in deps if not str(d).endswith(".py") and str(d) not in produced]


def source_problems(data: object, root: str | Path, inputs: list[str]) -> list[str]:
    """`ingest.source` outside ingest's tracked inputs (data/external): DVC would not see it change."""
    section = data.get("ingest") if isinstance(data, dict) else None
    source = section.get("source") if isinstance(section, dict) else None
    if not isinstance(source, str) or not source or source.startswith("builtin:") or not inputs:
        return []
    fixed = Path(*_iter_fixed(source) or ["."])
    where = os.path.normpath(os.path.join(os.path.abspath(root), fixed))
    for inp in inputs:
        base = os.path.normpath(os.path.join(os.path.abspath(root), inp))
        if where == base or where.startswith(base + os.sep):
            return []
    named = " or ".join(inputs)
    how = (
        f"Fetch it there with `dvc import-url {source} {inputs[0]}/NAME` (tracked; `dvc update` refreshes it)"
        if _URL.match(source)
        else f"Copy it under {inputs[0]}/ (a large file: then `dvc add {inputs[0]}/NAME`; from another DVC "
        f"repository: `dvc import REPO PATH -o {inputs[0]}/NAME`)"
    )
    return [
        f"`ingest.source` = {source!r} is outside {named}, the input dvc.yaml tracks for ingest, so DVC "
        f"does not see it change: edit it and `ftpipe run` / `dvc repro` say 'up to date'. {how} and "
        "point `ingest.source` at it, or add its folder to ingest's deps in dvc.yaml."
    ]


def _iter_fixed(source: str) -> list[str]:
    """The parts of a path or glob before its first wildcard (a glob's fixed leading directory)."""
    parts = []
    for part in Path(source).parts:
        if _WILDCARD.search(part):
            break
        parts.append(part)
    return parts


def check_file(
    params: str | Path = DEFAULT_PARAMS_PATH,
    dvc_yaml: str | Path = "dvc.yaml",
    models: dict[str, type[BaseModel]] | None = None,
) -> list[str]:
    """Every problem of the params file, each prefixed with its path; [] when it is clean."""
    try:
        data = read_params_file(params)
    except ParamsError as exc:
        return [str(exc)]
    problems = check_params(data, tracked_keys(dvc_yaml), models)
    problems += source_problems(data, Path(dvc_yaml).parent, ingest_inputs(dvc_yaml))
    return [f"{params}: {p}" for p in problems]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(DEFAULT_PARAMS_PATH))
    ap.add_argument("--dvc-yaml", default="dvc.yaml", help="whose tracked params keys must exist")
    add_path_args(ap, "check")
    args = ap.parse_args(argv)
    problems = check_file(args.params, args.dvc_yaml)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(
            f"check: {len(problems)} problem(s) in {args.params}; no other stage ran. Fix the file and "
            "run again (`ftpipe check` checks it without DVC).",
            file=sys.stderr,
        )
        sys.exit(2)
    # no param values here: a change that passes the check must not make ingest (and the DAG) stale
    write_json(args.report, {"checked": {s: m.__name__ for s, m in STAGE_MODELS.items()}, "problems": []})
    print(f"check: {args.params} is valid ({len(STAGE_MODELS)} stage sections)")


if __name__ == "__main__":
    main()
