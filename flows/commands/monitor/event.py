"""The Prefect event `ftpipe.monitor.drift`: what prefect.yaml's trigger turns into one retrain per cooldown.

    emit_drift(report, "ftpipe-bbc-news")     # on warn / fail, when PREFECT_API_URL names a server

The event's resource is `ftpipe.model.<registered model name>`; its payload holds the outcome, the reason,
the champion version, the rows and each figure. Without PREFECT_API_URL nothing is emitted (there is no
server to trigger a deployment). Prefect is imported only here and only then: the monitor stays a plain
command. A server that is down costs one warning line; the monitor's exit status does not change.
"""

from __future__ import annotations

import logging
import os

from flows.commands.monitor.core import MonitorReport

EVENT = "ftpipe.monitor.drift"
LOG = logging.getLogger("ftpipe.monitor")


def resource_id(name: str) -> str:
    """The event's resource: the registered model it is about (prefect.yaml's trigger matches it)."""
    return f"ftpipe.model.{name}"


def emit_drift(report: MonitorReport, name: str) -> bool:
    """Emit `ftpipe.monitor.drift` for a warn / fail report; True when Prefect accepted it."""
    if report.outcome not in ("warn", "fail") or not os.environ.get("PREFECT_API_URL"):
        return False
    try:
        from prefect.events import emit_event

        event = emit_event(
            event=EVENT,
            resource={"prefect.resource.id": resource_id(name), "prefect.resource.name": name},
            payload={
                "outcome": report.outcome,
                "reason": report.reason,
                "champion": report.champion,
                "rows": report.rows,
                "figures": {f.name: f.value for f in report.figures},
            },
        )
        return event is not None
    except Exception as exc:  # noqa: BLE001 - the event is a convenience; the report is the record
        LOG.warning("event %s not emitted (%s: %s)", EVENT, type(exc).__name__, exc)
        return False
