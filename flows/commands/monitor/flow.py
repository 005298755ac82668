"""`ftpipe monitor` as a Prefect flow, for prefect.yaml's hourly `monitor` deployment.

    prefect deploy --all && prefect worker start --pool ftpipe-process    # docs/orchestration.md

The flow runs the command's body once; a warn / fail window emits `ftpipe.monitor.drift`
(flows/commands/monitor/event.py), which prefect.yaml's trigger turns into a retrain, at most one per
`monitor.cooldown_hours`.
"""

from __future__ import annotations

from prefect import flow

from flows.commands.monitor.run import run_monitor


@flow(name="monitor", log_prints=True)
def monitor(since: str | None = None, params: str = "params.yaml") -> int:
    """One monitor window; its exit status (0 whatever the outcome; 1 no champion; 2 bad params)."""
    code = run_monitor(params, since, None)
    if code != 0:
        raise RuntimeError(f"ftpipe monitor exited {code}; its message is in this run's log")
    return code
