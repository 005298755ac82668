"""The `ftpipe` console command: one entry point for running, scheduling, predicting and the registry.

    ftpipe --help

Each command lives in its own module, which exposes `add_commands(subparsers)`; heavy imports happen
inside the command functions so `ftpipe --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from stages.common.redact import mask_output

# modules that contribute sub-commands, in the order `--help` lists them
COMMAND_MODULES = ("flows.retrain", "flows.check", "flows.predict", "flows.registry")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ftpipe", description="Full-parameter fine-tuning pipeline.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that part of ftpipe is not installed yet
                continue
            raise
        module.add_commands(sub)
    return ap


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    mask_output()  # no command prints or logs the tracking password (MLflow copies it into its text)
    sys.exit(args.func(args) or 0)


if __name__ == "__main__":
    main()
