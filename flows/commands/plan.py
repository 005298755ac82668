"""ftpipe plan: the finetune stage's memory plan for params.yaml, before anything is trained.

    ftpipe plan                          # the table; exit 0 when it fits, 2 (with the changes to make) when not
    ftpipe plan --budget-gb 4            # against 4 GiB instead of this machine's memory
    FTPIPE_MEMORY_BUDGET_GB=4 ftpipe plan

Reads `finetune` and `tokenize` from params.yaml, the number of classes from labels.json (2 when it is
not written yet), the base model's config.json (its parameters counted on the meta device: no weights are
loaded), and resolves `precision: auto` and the device as the finetune stage does. The arithmetic is
stages/model/memplan.py; the finetune stage runs the same check before it reads its data.
docs/training.md, "Reading the memory plan".
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from stages.config.finetune import FinetuneParams
from stages.config.params import ParamsError, load_section
from stages.config.paths import PATHS
from stages.config.tokenize import TokenizeParams

if TYPE_CHECKING:
    from stages.model.memplan import Plan

# stages/model/memplan.py's BUDGET_ENV, spelled here: importing memplan imports torch, and `ftpipe --help`
# must not (tests/flows/commands/test_cli.py); tests/flows/commands/test_plan.py checks that the two agree
BUDGET_ENV = "FTPIPE_MEMORY_BUDGET_GB"


def budget_problem(budget_gb: float | None, env: dict[str, str] | None = None) -> str | None:
    """Why the budget given (--budget-gb, else FTPIPE_MEMORY_BUDGET_GB) is no positive finite number of
    GiB; None when it is one or none is given. Checked before torch is imported: a refusal is at once."""
    if budget_gb is not None:
        if not (math.isfinite(budget_gb) and budget_gb > 0):
            return f"--budget-gb {budget_gb}: give a positive number of GiB, e.g. 8"
        return None
    raw = (os.environ if env is None else env).get(BUDGET_ENV, "").strip()
    if raw and raw.lower() != "off":
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            return (
                f"{BUDGET_ENV} = {raw[:40]!r} is not a positive number of GiB; set it to e.g. 8, or to `off` "
                "to skip the memory check"
            )
    return None


def plan_for(params: str, labels: str, budget_gb: float | None = None) -> Plan:
    """The memory plan of the finetune stage for the params file `params` on this machine."""
    # torch and transformers, imported when a plan is asked for (see BUDGET_ENV above)
    from stages.model.memplan import GIB, plan_run
    from stages.model.runtime import resolve_runtime

    p = load_section("finetune", FinetuneParams, params)
    t = load_section("tokenize", TokenizeParams, params)
    rt = resolve_runtime(p)
    if budget_gb is not None and (problem := budget_problem(budget_gb)):
        raise ParamsError(problem)
    budget = (int(budget_gb * GIB), f"--budget-gb {budget_gb:g}") if budget_gb else None
    return plan_run(
        p, t.model, t.trust_remote_code, t.max_length, Path(labels), rt.device, rt.precision, budget
    )


def _cmd_plan(args: argparse.Namespace) -> int:
    if problem := budget_problem(args.budget_gb):
        print(f"ftpipe plan: {problem}.", file=sys.stderr)
        return 2
    from stages.model.memplan import format_plan, refusal
    from stages.model.resolve import ModelRefError
    from stages.model.trainer import FinetuneError

    try:
        plan = plan_for(args.params, args.labels, args.budget_gb)
    except ParamsError as exc:  # bad params: bad input, as `ftpipe check` says it
        print(f"ftpipe plan: {exc}", file=sys.stderr)
        return 2
    except (FinetuneError, ModelRefError, OSError) as exc:  # a model that cannot be read
        print(f"ftpipe plan: {exc}", file=sys.stderr)
        return 1
    print(format_plan(plan))
    if not plan.fits:
        print(f"\nftpipe plan: {refusal(plan)}", file=sys.stderr)
        return 2
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`ftpipe plan`."""
    p = sub.add_parser(
        "plan",
        help="the finetune stage's memory plan: per-device peak vs this machine's memory",
        description="Compute the per-process memory of the configured fine-tuning run (weights, gradients, "
        "AdamW state, activations, framework) and compare it with one GPU's memory or this machine's "
        f"available RAM ({BUDGET_ENV} or --budget-gb overrides it). Exit 0 when it fits, 2 when it does "
        "not (naming the params to change), 1 when params or the model cannot be read.",
    )
    p.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    p.add_argument(
        "--labels",
        default=str(PATHS["finetune"]["labels"]),
        help="labels.json, for the number of classes (default: the finetune stage's)",
    )
    p.add_argument(
        "--budget-gb", type=float, metavar="GIB", help=f"the budget in GiB (overrides {BUDGET_ENV})"
    )
    p.set_defaults(func=_cmd_plan)
