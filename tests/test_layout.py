"""No function in stages/ or flows/ is longer than MAX_LINES: a reader should see one on one screen.

    .venv/bin/pytest tests/test_layout.py -s -q -p no:cacheprovider   # the check, with the table
    .venv/bin/python -m tests.test_layout                              # just the table

A function's length is `end_lineno - lineno + 1` of its `def` (decorators excluded; a nested function
counts inside its parent and is measured on its own too). Methods count like functions.

Tests mirror the tree: every folder of tests under tests/stages/, tests/flows/ and tests/bench/ has the
source folder it tests (tests/stages/registry/ tests stages/registry/).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("stages", "flows")
MAX_LINES = 60
SHOWN = 5
MIRRORED = {"tests/stages": "stages", "tests/flows": "flows", "tests/bench": "bench"}  # tests -> source


@dataclass(frozen=True)
class Function:
    path: str  # relative to the repository
    line: int
    name: str  # Class.method for methods, outer.inner for nested functions
    length: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.name} {self.length}"


def functions_in(source: str, path: str) -> list[Function]:
    """Every function and method defined in `source`, with its length in lines."""
    found: list[Function] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                found.append(Function(path, child.lineno, prefix + child.name, length))
                walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(ast.parse(source, filename=path), "")
    return found


def all_functions(repo: Path = REPO) -> list[Function]:
    """The functions of every .py file under stages/ and flows/, longest first."""
    found = [
        fn
        for package in PACKAGES
        for f in sorted((repo / package).rglob("*.py"))
        for fn in functions_in(f.read_text(encoding="utf-8"), str(f.relative_to(repo)))
    ]
    return sorted(found, key=lambda fn: (-fn.length, fn.path, fn.line))


def table(functions: list[Function], n: int = SHOWN) -> str:
    lines = [f"the {n} longest functions in {' and '.join(PACKAGES)} (limit {MAX_LINES} lines):"]
    lines += [f"  {fn.length:4d}  {fn.path}:{fn.line} {fn.name}" for fn in functions[:n]]
    return "\n".join(lines)


def test_the_measure_counts_def_to_last_line_without_decorators_and_nests() -> None:
    source = "@decorator\ndef outer():\n    def inner():\n        pass\n    return inner\n\n\nclass C:\n    def m(self):\n        return 1\n"
    assert [(fn.name, fn.line, fn.length) for fn in functions_in(source, "x.py")] == [
        ("outer", 2, 4),
        ("outer.inner", 3, 2),
        ("C.m", 9, 2),
    ]


def test_no_function_is_longer_than_the_limit() -> None:
    functions = all_functions()
    print("\n" + table(functions))
    too_long = [fn for fn in functions if fn.length > MAX_LINES]
    assert not too_long, (
        f"{len(too_long)} function(s) longer than {MAX_LINES} lines; split them into named steps:\n"
        + "\n".join(f"  {fn}" for fn in too_long)
    )


def unmirrored_test_folders(repo: Path = REPO) -> list[str]:
    """Folders of tests with no source folder at the same place: tests that moved away from their code."""
    return [
        str(folder.relative_to(repo))
        for tests, source in MIRRORED.items()
        for folder in sorted((repo / tests).rglob("*"))
        if folder.is_dir()
        and folder.name != "__pycache__"
        and not (repo / source / folder.relative_to(repo / tests)).is_dir()
    ]


def test_every_test_folder_mirrors_a_source_folder(tmp_path: Path) -> None:
    assert unmirrored_test_folders() == []
    for folder in ("stages/data", "tests/stages/data", "tests/stages/common", "tests/flows/commands"):
        (tmp_path / folder).mkdir(parents=True)
    assert unmirrored_test_folders(tmp_path) == ["tests/stages/common", "tests/flows/commands"]


if __name__ == "__main__":
    functions = all_functions()
    print(table(functions))
    over = [fn for fn in functions if fn.length > MAX_LINES]
    if over:
        print(f"\n{len(over)} over the limit:\n" + "\n".join(f"  {fn}" for fn in over))
    sys.exit(1 if over else 0)
