"""retrain: the main job. Runs `dvc.yaml`'s DAG as a Prefect flow, one task per stage.

    ftpipe run                                  # or `make run`: the whole DAG on the defaults
    ftpipe run --target label -S clean.min_words=5 --force
    ftpipe serve-schedule                       # the same flow on `retrain.schedule_cron` (needs a server)

The flow only orchestrates: the DAG comes from DVC (flows/dag.py), each task runs `dvc repro
--single-item STAGE` (flows/runner.py), so DVC alone decides what is stale and keeps `dvc.lock` and
`dvc repro` stays an equivalent way to run the same pipeline; the run ends with a summary, printed and
kept as a Prefect markdown artifact (flows/summary.py). No task is retried by the flow: a stage that
reaches the registry retries inside itself (docs/orchestration.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.dag import StageSpec, find_root, read_dag, select_stages
from flows.lock import workspace_lock
from flows.params import apply_overrides
from flows.runner import StageFailed, StageOutcome, run_stage
from flows.summary import build_summary, render_markdown
from stages.core.io import remove_leftovers
from stages.core.redact import mask_secrets

SUMMARY_ARTIFACT_KEY = "retrain-summary"


def _stage_task(spec: StageSpec, root: str, force: bool) -> StageOutcome:
    """Run one dvc.yaml stage (its Prefect task is named like the stage)."""
    from prefect import get_run_logger

    logger = get_run_logger()
    try:
        outcome = run_stage(spec, root, force, log=logger.info)
    except StageFailed as exc:
        logger.error("%s\n(last lines of its stderr:)\n%s", exc, exc.stderr_tail)
        raise
    logger.info("%s: %s in %.1f s", spec.name, outcome.status, outcome.seconds)
    return outcome


def _retrain(
    root: str | None = None,
    force: bool = False,
    target: str | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Run dvc.yaml's stages in dependency order through DVC; end with a summary. One run at a time."""
    repo = find_root(root)
    with workspace_lock(repo):  # held by `ftpipe run` already; taken here by scheduled runs
        return _run_dag(repo, force, target, list(overrides or []))


def _run_dag(repo: Path, force: bool, target: str | None, overrides: list[str]) -> dict[str, Any]:
    """The flow's body, under the workspace lock."""
    from prefect import task
    from prefect.artifacts import create_markdown_artifact
    from prefect.cache_policies import NO_CACHE

    applied = apply_overrides(repo, overrides)
    dag = select_stages(read_dag(repo), target)
    for spec in dag:  # what a killed run left beside the outputs (.NAME.tmp-*), even of stages that skip
        for out in spec.outputs:
            remove_leftovers(repo / out)
    base = task(cache_policy=NO_CACHE)(_stage_task)
    outcomes: list[StageOutcome] = []
    failure: BaseException | None = None
    for spec in dag:
        stage_task = base.with_options(name=spec.name, task_run_name=spec.name)
        try:
            outcomes.append(stage_task(spec, str(repo), force))
        except StageFailed as exc:
            outcomes.append(StageOutcome(spec.name, "failed", exc.seconds, error=exc.message))
            failure = StageFailed(exc.stage, exc.message, exc.seconds, exc.stderr_tail)  # no task traceback
            break
        except Exception as exc:  # the task could not even start the stage
            message = mask_secrets(f"{type(exc).__name__}: {exc}")
            outcomes.append(StageOutcome(spec.name, "failed", error=message))
            failure = StageFailed(spec.name, message)
            break
    summary = build_summary(repo, dag, outcomes, applied, target, force)
    markdown = render_markdown(summary)
    summary["markdown"] = markdown
    print(markdown, flush=True)
    create_markdown_artifact(markdown, key=SUMMARY_ARTIFACT_KEY, description="ftpipe retrain summary")
    if failure is not None:
        raise failure
    return summary


def build_flow() -> Any:
    """The Prefect flow object (built on first use so importing this module does not import Prefect)."""
    from prefect import flow

    # Prefect records `flows/retrain.py:<qualname>` as the deployment's entrypoint; name the function
    # like the module attribute that yields the flow (see `__getattr__`).
    _retrain.__name__ = _retrain.__qualname__ = "retrain"
    return flow(name="retrain", validate_parameters=True)(_retrain)


if TYPE_CHECKING:
    retrain: Any  # the flow, built on first access by __getattr__


def __getattr__(name: str) -> Any:
    # `retrain` (the flow) is created lazily: `flows/retrain.py:retrain` is the Prefect entrypoint.
    if name == "retrain":
        globals()["retrain"] = value = build_flow()
        return value
    raise AttributeError(name)


if __name__ == "__main__":
    # the CLI (flows/cli.py) imports this module, never the other way round
    sys.exit(
        "flows/retrain.py holds the flow, not a command: run it with `ftpipe run` (or `python -m flows.cli run`)."
    )
