"""The `ftpipe` console command: one entry point for running, scheduling, predicting and the registry.

    ftpipe --help
    ftpipe run [--target STAGE] [--force] [-S key=value ...]   # the retrain flow (flows/retrain.py)
    ftpipe -v run                                              # every stage's output and Prefect's log
    ftpipe serve-schedule [--cron EXPR | --interval SECONDS]   # the same flow on a schedule

Quiet by default: one line per stage, the summary, warnings that mean something, and a failure's
message once (no traceback). `-v` (or FTPIPE_VERBOSE=1, which the stages honour too) shows every stage's
output as it comes and Prefect's INFO log; otherwise a stage's output is kept in
.dvc/tmp/ftpipe-logs/STAGE.log. `--no-progress` (implied when stderr is not a terminal) turns off the
progress bars of tqdm, Hugging Face and MLflow.

`run` and `serve-schedule` live here; the other commands live in their own modules, which expose
`add_commands(subparsers)`. Prefect and MLflow are imported inside the command functions (the flows
modules imported at the top import neither, and the retrain flow is built on first use), so
`ftpipe --help` stays fast and Prefect reads the telemetry switches below.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from flows.dag import RetrainError, find_root
from flows.lock import workspace_lock
from flows.params import ParamsProblems, apply_overrides, load_retrain_params
from flows.runner import NO_PROGRESS_ENV, QUIET_BARS, StageFailed, progress_bars, tell_failure
from flows.watchdog import start_watchdog
from stages.config.params import ParamsError
from stages.core.logs import VERBOSE_ENV, verbose_requested
from stages.core.redact import mask_output

# Set before Prefect is imported: its settings are read at import. Without them Prefect's telemetry
# writes to its SQLite database from a background thread and prints "database is locked" tracebacks.
TELEMETRY_OFF = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1"}
# Prefect's console handler (its logging.yml: handlers.console.level, overridable as below) shows
# warnings and errors only unless -v; its API handler still records every INFO line for the UI
QUIET_PREFECT = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING"}

# modules that contribute sub-commands, in the order `--help` lists them
COMMAND_MODULES = (
    "flows.commands.init",
    "flows.commands.check",
    "flows.commands.predict.command",
    "flows.commands.serve.command",
    "flows.commands.monitor.command",
    "flows.commands.registry",
    "flows.commands.plan",
)
DEFAULT_DEPLOYMENT = "scheduled-retrain"  # also the deployment name in prefect.yaml


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        root = find_root(args.root)
        with workspace_lock(root):  # for the whole run: the -S trial below writes params.yaml too
            dog = start_watchdog(root)  # a kill -9 of this process leaves nothing running (flows/watchdog.py)
            try:
                return _run_locked(root, args)
            finally:
                dog.done()
    except RetrainError as exc:  # another run holds the workspace, or not a DVC repo
        print(f"\nftpipe run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the stage was stopped and params.yaml put back on the way out
        if verbose_requested():
            traceback.print_exc()
        print("\nftpipe run: stopped (Ctrl-C); params.yaml is as it was before the run.", file=sys.stderr)
        return 130


def _run_locked(root: Path, args: argparse.Namespace) -> int:
    from flows.retrain import retrain  # the flow, built (and Prefect imported) on first access
    from flows.runner import busy_message, dvc_holders

    if holders := dvc_holders(root):  # a `dvc repro` by hand: not even a trial of -S under its feet
        print(f"\nftpipe run: {busy_message(root, holders)} Nothing ran.", file=sys.stderr)
        return 1
    try:  # the check before DVC starts, with the overrides tried and put back: each problem said once
        apply_overrides(root, args.overrides, keep=False)
    except ParamsProblems as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        tried = " with the -S overrides applied" if args.overrides else ""
        print(
            f"\nftpipe run: {len(exc.problems)} problem(s) in params.yaml{tried}; nothing ran and "
            "params.yaml is as it was.",
            file=sys.stderr,
        )
        return 2
    except ParamsError as exc:  # an override that cannot be applied, an unreadable params.yaml: bad input
        print(f"\nftpipe run: {exc}", file=sys.stderr)
        return 2
    except RetrainError as exc:
        print(f"\nftpipe run: {exc}", file=sys.stderr)
        return 1
    try:
        with _failure_said_once():
            retrain(root=str(root), force=args.force, target=args.target, overrides=args.overrides)
    except (StageFailed, RetrainError, ParamsError) as exc:
        print(f"\nftpipe run: {exc}", file=sys.stderr)
        tell_failure(exc, root)  # sent by the flow already, unless the failure came before it
        return 1
    except Exception as exc:  # noqa: BLE001 - said in one line; the traceback with -v
        if verbose_requested():
            traceback.print_exc()
        print(f"\nftpipe run: {type(exc).__name__}: {exc}", file=sys.stderr)
        tell_failure(exc, root)
        return 1
    return 0


class _DropFlowErrors(logging.Filter):
    """Prefect's console copies of a failed task's and flow's error (with tracebacks): `ftpipe run`
    says the error itself, once. The records still reach Prefect's API (its UI and `prefect` CLI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno >= logging.ERROR
            and record.name.startswith(("prefect.flow_runs", "prefect.task_runs"))
        )


@contextlib.contextmanager
def _failure_said_once() -> Iterator[None]:
    """Without -v, leave the failure's repeats out of the console (see _DropFlowErrors)."""
    if verbose_requested():
        yield
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    drop = _DropFlowErrors()
    for h in handlers:
        h.addFilter(drop)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(drop)


def _api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()


def _cmd_serve(args: argparse.Namespace) -> int:
    if not _api_url():
        print(
            "ftpipe serve-schedule: PREFECT_API_URL is not set. Schedules need a running Prefect server: "
            "the temporary server that `ftpipe run` starts on its own does not run schedules. Start one "
            "with `prefect server start` (it listens on 127.0.0.1:4200), then run "
            "`PREFECT_API_URL=http://127.0.0.1:4200/api ftpipe serve-schedule`.",
            file=sys.stderr,
        )
        return 2
    from prefect.schedules import Cron, Interval

    from flows.retrain import retrain

    repo = find_root(args.root)
    params = load_retrain_params(repo)
    if args.interval:
        schedule = Interval(args.interval)
    else:
        schedule = Cron(args.cron or params.schedule_cron, timezone=params.timezone)
    retrain.serve(
        name=args.name,
        schedules=[schedule],
        parameters={"root": str(repo)},
        limit=1,  # never two runs at once from this server (the workspace lock covers the rest)
        tags=["ftpipe"],
        description="Scheduled retraining: runs dvc.yaml's stale stages; a run with unchanged inputs does nothing.",
    )
    return 0


def add_run_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`ftpipe run` and `ftpipe serve-schedule`."""
    p = sub.add_parser(
        "run",
        help="run the pipeline (dvc.yaml) as the Prefect retrain flow",
        description="Run dvc.yaml's stages in dependency order through DVC (stale ones only), as a "
        "Prefect flow, and print a summary. Without PREFECT_API_URL, Prefect starts a temporary local "
        "server for the run.",
    )
    p.add_argument("--force", action="store_true", help="rerun every stage even if DVC says it is up to date")
    p.add_argument("--target", metavar="STAGE", help="run only STAGE and the stages it depends on")
    p.add_argument(
        "-S",
        "--set-param",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a param for this run only, in `dvc exp run -S` syntax (params.yaml is put back "
        "byte for byte after the run; dvc.lock records the values the run used); repeatable",
    )
    p.add_argument("--root", default=".", help="the repository (default: the working directory)")
    _add_output_flags(p, argparse.SUPPRESS)
    p.set_defaults(func=_cmd_run)

    s = sub.add_parser(
        "serve-schedule",
        help="serve the retrain flow on a cron schedule (needs a Prefect server)",
        description="Serve the retrain flow as a Prefect deployment on a schedule, in this process. "
        "Needs PREFECT_API_URL pointing at `prefect server start`.",
    )
    s.add_argument("--cron", help="cron expression (default: retrain.schedule_cron in params.yaml)")
    s.add_argument("--interval", type=float, metavar="SECONDS", help="an interval schedule instead of cron")
    s.add_argument(
        "--name", default=DEFAULT_DEPLOYMENT, help=f"deployment name (default {DEFAULT_DEPLOYMENT})"
    )
    s.add_argument("--root", default=".", help="the repository (default: the working directory)")
    s.set_defaults(func=_cmd_serve)


def _add_output_flags(p: argparse.ArgumentParser, default: object) -> None:
    """-v and --no-progress, on `ftpipe` and again on `ftpipe run` (SUPPRESS there: `ftpipe -v run` kept)."""
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help=f"show every stage's output and Prefect's INFO log; same as {VERBOSE_ENV}=1",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        default=default,
        help="no progress bars (tqdm, Hugging Face, MLflow); the default when stderr is not a terminal",
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ftpipe", description="Full-parameter fine-tuning pipeline.")
    _add_output_flags(ap, False)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_run_commands(sub)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that part of ftpipe is not installed yet
                continue
            raise
        module.add_commands(sub)
    return ap


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SIGTERM's default ends the process on the spot: no `finally`, no atexit, so the temporary Prefect
    # server and the running stage would be orphaned. As an exception, the run unwinds like on Ctrl-C:
    # the stage's process group is stopped (flows/runner.py) and Prefect stops its server at exit.
    raise SystemExit(128 + signum)


def set_output_env(verbose: bool, no_progress: bool) -> None:
    """-v and --no-progress as environment variables, set before Prefect is imported (its settings are
    read then) and inherited by the stages (stages/core/logs.py, flows/runner.py)."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    if no_progress:
        os.environ[NO_PROGRESS_ENV] = "1"
    if not verbose_requested():
        for key, value in QUIET_PREFECT.items():
            os.environ.setdefault(key, value)
    if not progress_bars():  # for what runs in this process too (MLflow downloads in `ftpipe predict`)
        for key, value in QUIET_BARS.items():
            os.environ.setdefault(key, value)


def main(argv: list[str] | None = None) -> None:
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
    if threading.current_thread() is threading.main_thread():  # signal handlers live there only
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = build_parser().parse_args(argv)
    set_output_env(args.verbose, args.no_progress)
    mask_output()  # no command prints or logs the tracking password (MLflow copies it into its text)
    try:
        code = args.func(args) or 0
        sys.stdout.flush()
    except BrokenPipeError:  # `ftpipe history | head -2`: the reader has what it wanted
        _stdout_to_devnull()
        code = 0
    sys.exit(code)


def _stdout_to_devnull() -> None:
    """After a closed pipe, stdout points at /dev/null: the flush at exit must not fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
    finally:
        os.close(devnull)


if __name__ == "__main__":
    main()
