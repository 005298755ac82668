"""dvc.yaml's code deps cannot drift: each stage lists exactly the project modules its module imports.

A stage's modules are derived from its `python -m stages.<stage>` command by walking the imports of
that file, transitively, within the `stages` package: imports inside functions count (they run when the
stage does), package `__init__.py` files do not (they hold only a docstring, checked below). A module
missing from a stage's `deps` would let a change to it rerun nothing; a listed one it no longer imports
reruns the stage for nothing.
"""

from __future__ import annotations

import ast
import copy
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from stages.config.paths import PATHS, UNDECLARED
from tests.conftest import REPO

PACKAGE = "stages"


def module_file(name: str) -> Path | None:
    """The file of a project module (`stages.core.io` -> stages/core/io.py), None if not one."""
    base = REPO.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def direct_imports(path: Path) -> set[str]:
    """The `stages` modules that `path` imports anywhere in its body (functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from stages.registry import tags` imports the module stages.registry.tags
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {n for n in names if n.split(".")[0] == PACKAGE and module_file(n)}


def stage_modules(module: str) -> set[Path]:
    """The files of `module` and of every project module it imports, transitively (no __init__.py)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            path = module_file(name)
            assert path is not None, f"{name} is not a module of this repository"
            todo.extend(direct_imports(path))
    files = [module_file(n) for n in seen]
    return {f.relative_to(REPO) for f in files if f is not None and f.name != "__init__.py"}


def wiring_problems(dvc: dict[str, Any]) -> list[str]:
    """Each stage's imported modules missing from its deps, and listed code deps it does not import."""
    problems = []
    for name, stage in dvc["stages"].items():
        match = re.match(r"python -m (\S+)", stage["cmd"])
        assert match and match.group(1) == f"{PACKAGE}.{name}", f"stage {name}: cmd runs {stage['cmd']!r}"
        needed = {str(p) for p in stage_modules(match.group(1))}
        listed = {str(d) for d in stage.get("deps", [])}
        code = {d for d in listed if d.startswith(f"{PACKAGE}/") and d.endswith(".py")}
        problems += [f"stage {name}: imports {f}, not in its deps" for f in sorted(needed - listed)]
        problems += [f"stage {name}: lists {f}, which it does not import" for f in sorted(code - needed)]
    return problems


def test_every_stage_lists_exactly_the_modules_it_imports() -> None:
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert wiring_problems(dvc) == []


def test_a_missing_or_stale_dep_is_named() -> None:
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    broken = copy.deepcopy(dvc)
    broken["stages"]["ingest"]["deps"].remove("stages/core/logs.py")
    broken["stages"]["clean"]["deps"].append("stages/gate/checks.py")
    assert wiring_problems(broken) == [
        "stage ingest: imports stages/core/logs.py, not in its deps",
        "stage clean: lists stages/gate/checks.py, which it does not import",
    ]


def test_the_walk_follows_function_level_and_transitive_imports() -> None:
    modules = stage_modules("stages.finetune")
    assert Path("stages/serving/meanpool.py") in modules  # imported inside a function
    register = stage_modules("stages.register")
    assert Path("stages/registry/tags.py") in register  # `from stages.registry import tags as registry_tags`
    assert Path("stages/data/trained_on.py") in stage_modules("stages.gate.checks")  # not the registry


def test_package_init_files_hold_no_code() -> None:
    for init in (REPO / PACKAGE).rglob("__init__.py"):
        body = ast.parse(init.read_text(encoding="utf-8")).body
        is_docstring = [isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body]
        assert is_docstring in ([], [True]), f"{init.relative_to(REPO)} has code; the walk skips it"


def command_paths(cmd: str) -> dict[str, str | list[str]]:
    """`python -m stages.x --a p --b q r` -> {"a": "p", "b": ["q", "r"]} (a flag with several values
    is a list)."""
    args: dict[str, list[str]] = {}
    current = None
    for token in shlex.split(cmd)[3:]:
        if token.startswith("--"):
            current = token[2:].replace("-", "_")
            args[current] = []
        else:
            assert current is not None, f"{cmd!r}: {token!r} comes before any flag"
            args[current].append(token)
    return {k: v[0] if len(v) == 1 and k != "artifacts" else v for k, v in args.items()}


def declared_paths(stage: dict[str, Any]) -> set[str]:
    """Every path a dvc.yaml stage names as a dep, out, metric or plot."""
    paths = set(stage.get("deps", []))
    for kind in ("outs", "metrics", "plots"):
        for entry in stage.get(kind, []):
            paths |= set(entry) if isinstance(entry, dict) else {entry}
    return paths


def path_problems(dvc: dict[str, Any]) -> list[str]:
    """Each stage whose command's path arguments differ from the PATHS table, or name a path the stage
    does not declare as a dep or output."""
    problems = []
    assert set(dvc["stages"]) == set(PATHS), "dvc.yaml's stages and stages/config/paths.py differ"
    for name, stage in dvc["stages"].items():
        given = command_paths(stage["cmd"])
        if given != PATHS[name]:
            problems.append(
                f"stage {name}: dvc.yaml passes {given}, stages/config/paths.py says {PATHS[name]}"
            )
        declared = declared_paths(stage)
        for key, value in PATHS[name].items():
            for path in [value] if isinstance(value, str) else value:
                if path not in declared and (name, key) not in UNDECLARED:
                    problems.append(f"stage {name}: --{key} {path} is not a dep or output of it in dvc.yaml")
    return problems


def test_stage_commands_pass_exactly_the_paths_table() -> None:
    """A stage run by hand (`python -m stages.clean`) reads and writes what dvc.yaml declares."""
    assert path_problems(yaml.safe_load((REPO / "dvc.yaml").read_text())) == []


def test_a_path_that_drifts_is_named() -> None:
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    dvc["stages"]["clean"]["cmd"] = dvc["stages"]["clean"]["cmd"].replace("data/interim", "data/clean")
    dvc["stages"]["tokenize"]["deps"].remove("data/interim")
    problems = path_problems(dvc)
    assert problems[0].startswith("stage clean: dvc.yaml passes {'raw': 'data/raw', 'out': 'data/clean'")
    assert problems[1:] == ["stage tokenize: --clean data/interim is not a dep or output of it in dvc.yaml"]
