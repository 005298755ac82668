"""`ftpipe monitor`: the command line; the work is flows/commands/monitor/run.py, imported when the command
runs (pandas, scikit-learn and the registry client stay out of `ftpipe --help` and the other commands).

    ftpipe monitor --since 24h
"""

from __future__ import annotations

import argparse


def _cmd_monitor(args: argparse.Namespace) -> int:
    from flows.commands.monitor.run import run_monitor

    return run_monitor(args.params, args.since, args.name)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`ftpipe monitor`."""
    p = sub.add_parser(
        "monitor",
        help="compare served traffic (the request log) with the champion's data and test predictions",
        description="Read the request log of `ftpipe serve` for a window and compare it with the champion's "
        "stored profile and test predictions: predicted labels, confidence, text lengths and a domain "
        "classifier. Writes reports/monitor/ and says pass | warn | fail | insufficient. Settings: the "
        "`monitor` section of params.yaml.",
    )
    p.add_argument("--since", help="window: 30m, 24h, 7d (default: monitor.since_hours)")
    p.add_argument("--name", help="registered model (default: register.model_name in the params file)")
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.set_defaults(func=_cmd_monitor)
