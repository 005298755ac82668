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
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

PACKAGE = "stages"


def module_file(name: str) -> Path | None:
    """The file of a project module (`stages.common.io` -> stages/common/io.py), None if not one."""
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
            # `from stages.common import tags` imports the module stages.common.tags
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
    broken["stages"]["ingest"]["deps"].remove("stages/common/logs.py")
    broken["stages"]["clean"]["deps"].append("stages/common/gate.py")
    assert wiring_problems(broken) == [
        "stage ingest: imports stages/common/logs.py, not in its deps",
        "stage clean: lists stages/common/gate.py, which it does not import",
    ]


def test_the_walk_follows_function_level_and_transitive_imports() -> None:
    modules = stage_modules("stages.finetune")
    assert Path("stages/common/meanpool.py") in modules  # imported inside a function
    register = stage_modules("stages.register")
    assert Path("stages/common/tags.py") in register  # `from stages.common import tags as T`
    assert Path("stages/common/lineage.py") in stage_modules("stages.common.gate")  # through gate


def test_package_init_files_hold_no_code() -> None:
    for init in (REPO / PACKAGE).rglob("__init__.py"):
        body = ast.parse(init.read_text(encoding="utf-8")).body
        is_docstring = [isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body]
        assert is_docstring in ([], [True]), f"{init.relative_to(REPO)} has code; the walk skips it"
