"""ftpipe check: every params.yaml section against its typed model, before DVC touches anything.

    ftpipe check                # one line per problem; exit 2 on problems, 0 when params.yaml is clean

The check of dvc.yaml's `check` stage (stages/check.py: each stage's section, unknown keys and sections,
the keys dvc.yaml tracks), plus the flow's own `retrain` section. `ftpipe run` runs it before DVC
starts, with its `-S` overrides applied (flows/params.py, `apply_overrides`). docs/pipeline.md, "Checking params".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flows.dag import RetrainError, find_root
from stages.check import check_file
from stages.config.params import ParamsError
from stages.config.sections import ALL_MODELS


class ParamsProblems(ParamsError):
    """params.yaml does not pass the check; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def params_problems(root: str | Path) -> list[str]:
    """Every problem of ROOT/params.yaml (against ROOT/dvc.yaml's tracked keys), one line each."""
    root = Path(root).resolve()
    if root.is_relative_to(Path.cwd()):  # name the file as the user would: params.yaml from the root
        root = root.relative_to(Path.cwd())
    return check_file(root / "params.yaml", root / "dvc.yaml", ALL_MODELS)


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        root = find_root(args.root)
    except RetrainError as exc:
        print(f"ftpipe check: {exc}", file=sys.stderr)
        return 1
    problems = params_problems(root)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"ftpipe check: {len(problems)} problem(s) in params.yaml", file=sys.stderr)
        return 2
    print(f"ftpipe check: {root / 'params.yaml'} is valid")
    return 0


def add_commands(sub: Any) -> None:
    """`ftpipe check`."""
    p = sub.add_parser(
        "check",
        help="check params.yaml against every stage's typed params (before `dvc repro`)",
        description="Validate every params.yaml section against its typed model: unknown keys and "
        "sections, wrong types, out-of-range values, and keys that dvc.yaml tracks but params.yaml lacks. "
        "Prints one line per problem; exit status 2 when there are problems, 0 when there are none.",
    )
    p.add_argument("--root", default=".", help="the repository (default: the working directory)")
    p.set_defaults(func=_cmd_check)
