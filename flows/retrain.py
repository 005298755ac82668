"""retrain: the main job. Runs `dvc.yaml`'s DAG as a Prefect flow, one task per stage.

    ftpipe run                                  # or `make run`: the whole DAG on the defaults
    ftpipe run --target label -S clean.min_words=5 --force
    ftpipe serve-schedule                       # the same flow on `retrain.schedule_cron` (needs a server)

The flow only orchestrates: the DAG comes from DVC (flows/dag.py), one `dvc status` up front says
which stages are stale, each stale task runs `dvc repro --single-item STAGE` (flows/runner.py), and a
stage that was up to date with nothing upstream run is skipped as `dvc repro` would skip it, without
starting DVC for it. So DVC alone decides what is stale and keeps `dvc.lock`, and `dvc repro` stays an
equivalent way to run the same pipeline. `-S` overrides hold for the run only (flows/params.py). The run
ends with a summary, printed and kept as a Prefect markdown artifact (flows/summary.py). No task is
retried by the flow: a stage that reaches the registry retries inside itself (docs/orchestration.md).
"""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from flows.dag import RetrainError, StageSpec, find_root, read_dag, select_stages
from flows.lock import workspace_lock
from flows.params import Override, overridden_params
from flows.runner import (
    StageFailed,
    StageOutcome,
    busy_message,
    dvc_holders,
    run_stage,
    stale_stages,
    tell_failure,
)
from flows.summary import Summary, build_summary, render_markdown
from stages.core.io import remove_leftovers
from stages.core.redact import mask_secrets

if TYPE_CHECKING:
    from typing import TypeAlias

    from prefect import Flow

    RetrainFlow: TypeAlias = Flow[..., Summary]  # _retrain's parameters, called by keyword

SUMMARY_ARTIFACT_KEY = "retrain-summary"


def _console_shows_info() -> bool:
    """Whether Prefect's console handler prints INFO lines: with `ftpipe -v`, or outside `ftpipe run`
    (which sets it to WARNING, flows/commands/cli.py); if not, the flow prints its own few lines."""
    from prefect.logging.handlers import PrefectConsoleHandler

    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    return any(h.level <= logging.INFO for h in handlers)


def _say(line: str) -> None:
    """A progress line: in the Prefect logs, and printed when the console does not show them."""
    from prefect import get_run_logger

    get_run_logger().info(line)
    if not _console_shows_info():
        print(line, flush=True)


def _stage_line(outcome: StageOutcome) -> str:
    return f"{outcome.name:<12} {outcome.status:<9} {outcome.seconds:6.1f} s"


def _warn(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def _stage_task(spec: StageSpec, root: str, force: bool) -> StageOutcome:
    """Run one dvc.yaml stage (its Prefect task is named like the stage).

    Every line of the stage's output goes to the Prefect logs (the UI) and its log file; the console
    shows it with -v, and otherwise only the stage's warnings, and on failure what it printed before
    its error.
    """
    from prefect import get_run_logger

    logger = get_run_logger()
    quiet = not _console_shows_info()
    try:
        outcome = run_stage(spec, root, force, log=logger.info, warn=_warn if quiet else None)
    except StageFailed as exc:
        _say(f"{_stage_line(StageOutcome(spec.name, 'failed', exc.seconds))}   output: {exc.log_file}")
        if exc.stderr_tail and quiet:  # what it printed before its error (the error: said once)
            print(textwrap.indent(exc.stderr_tail, "  | "), file=sys.stderr, flush=True)
        logger.error("%s", exc)  # the Prefect record (its console copy is left out by `ftpipe run`)
        raise
    _say(_stage_line(outcome))
    return outcome


def _retrain(
    root: str | None = None,
    force: bool = False,
    target: str | None = None,
    overrides: list[str] | None = None,
) -> Summary:
    """Run dvc.yaml's stages in dependency order through DVC; end with a summary. One run at a time.

    `overrides` (`-S key=value`) hold for this run only: params.yaml is put back byte for byte when it
    ends (flows/params.py).
    """
    repo = Path(root or ".")
    try:
        repo = find_root(root)
        with workspace_lock(repo):  # held by `ftpipe run` already; taken here by scheduled runs
            if holders := dvc_holders(repo):  # a `dvc repro` by hand: say who, before anything starts
                raise RetrainError(busy_message(repo, holders) + " Nothing ran.")
            with overridden_params(repo, list(overrides or [])) as applied:
                return _run_dag(repo, force, target, applied)
    except Exception as exc:  # FTPIPE_NOTIFY hears of it, however the run was started
        tell_failure(exc, repo)
        raise


def _run_dag(repo: Path, force: bool, target: str | None, applied: list[Override]) -> Summary:
    """The flow's body, under the workspace lock, with the overrides in place."""
    from prefect import task
    from prefect.artifacts import create_markdown_artifact
    from prefect.cache_policies import NO_CACHE

    dag = select_stages(read_dag(repo), target)
    for spec in dag:  # what a killed run left beside the outputs (.NAME.tmp-*), even of stages that skip
        for out in spec.outputs:
            remove_leftovers(repo / out)
    stale = set() if force else stale_stages(repo, dag)  # one `dvc status` for the run
    base = task(cache_policy=NO_CACHE)(_stage_task)
    outcomes: list[StageOutcome] = []
    failure: BaseException | None = None
    for spec in dag:
        if _up_to_date(spec, stale, outcomes, force):  # as `dvc repro` would, without starting it
            outcomes.append(StageOutcome(spec.name, "skipped"))
            _say(_stage_line(outcomes[-1]))
            continue
        stage_task = base.with_options(name=spec.name, task_run_name=spec.name)
        try:
            outcomes.append(stage_task(spec, str(repo), force))
        except StageFailed as exc:
            outcomes.append(StageOutcome(spec.name, "failed", exc.seconds, error=exc.message))
            failure = StageFailed(exc.stage, exc.message, exc.seconds, exc.stderr_tail, exc.log_file)
            break
        except Exception as exc:  # the task could not even start the stage
            message = mask_secrets(f"{type(exc).__name__}: {exc}")
            outcomes.append(StageOutcome(spec.name, "failed", error=message))
            failure = StageFailed(spec.name, message)
            break
    summary = build_summary(repo, dag, outcomes, applied, target, force)
    markdown = render_markdown(summary)
    summary["markdown"] = markdown
    # printed, a failure's message is left to what follows: `ftpipe run`'s last line (said once), or
    # Prefect's own log of the failed flow run; the artifact carries it
    print(render_markdown(summary, error_inline=False), flush=True)
    create_markdown_artifact(markdown, key=SUMMARY_ARTIFACT_KEY, description="ftpipe retrain summary")
    if failure is not None:
        raise failure
    return summary


def _up_to_date(spec: StageSpec, stale: set[str], done: list[StageOutcome], force: bool) -> bool:
    """DVC said the stage was up to date when the run began, and nothing upstream of it ran since."""
    upstream = {o.name: o.status for o in done if o.name in spec.upstream}
    return not force and spec.name not in stale and all(s == "skipped" for s in upstream.values())


def build_flow() -> RetrainFlow:
    """The Prefect flow object (built on first use so importing this module does not import Prefect)."""
    from prefect import flow

    # Prefect records `flows/retrain.py:<qualname>` as the deployment's entrypoint; name the function
    # like the module attribute that yields the flow (see `__getattr__`).
    _retrain.__name__ = _retrain.__qualname__ = "retrain"
    return flow(name="retrain", validate_parameters=True)(_retrain)


if TYPE_CHECKING:
    retrain: RetrainFlow  # the flow, built on first access by __getattr__


def __getattr__(name: str) -> RetrainFlow:
    # `retrain` (the flow) is created lazily: `flows/retrain.py:retrain` is the Prefect entrypoint.
    if name == "retrain":
        globals()["retrain"] = value = build_flow()
        return value
    raise AttributeError(name)


if __name__ == "__main__":
    # the CLI (flows/commands/cli.py) imports this module, never the other way round
    sys.exit(
        "flows/retrain.py holds the flow, not a command: run it with `ftpipe run` (or `python -m flows.commands.cli run`)."
    )
