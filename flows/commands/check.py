"""ftpipe check: every params.yaml section against its typed model, before DVC touches anything.

    ftpipe check                # one line per problem; exit 2 on problems, 0 when params.yaml is clean
    ftpipe check --params experiment.yaml   # another params file, against the root's dvc.yaml

The check of dvc.yaml's `check` stage (stages/check.py: each stage's section, unknown keys and sections,
the keys dvc.yaml tracks), plus the flow's own `retrain` section. The check itself, `params_problems`,
lives with the flow's params (flows/params.py): `ftpipe run` runs it before DVC starts, with its `-S`
overrides applied (`apply_overrides`). docs/pipeline.md, "Checking params".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.dag import RetrainError, find_root
from flows.params import params_problems


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        root = find_root(args.root)
    except RetrainError as exc:
        print(f"ftpipe check: {exc}", file=sys.stderr)
        return 1
    path = root / "params.yaml" if args.params is None else Path(args.params)
    if not path.is_file():
        print(f"ftpipe check: no params file at {path}", file=sys.stderr)
        return 2
    problems = params_problems(root, path)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"ftpipe check: {len(problems)} problem(s) in {path.name}", file=sys.stderr)
        return 2
    print(f"ftpipe check: {path} is valid")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`ftpipe check`."""
    p = sub.add_parser(
        "check",
        help="check params.yaml against every stage's typed params (before `dvc repro`)",
        description="Validate every params.yaml section against its typed model: unknown keys and "
        "sections, wrong types, out-of-range values, and keys that dvc.yaml tracks but params.yaml lacks. "
        "Prints one line per problem; exit status 2 when there are problems, 0 when there are none.",
    )
    p.add_argument("--root", default=".", help="the repository (default: the working directory)")
    p.add_argument(
        "--params", default=None, help="the params file to check (default: params.yaml in the root)"
    )
    p.set_defaults(func=_cmd_check)
