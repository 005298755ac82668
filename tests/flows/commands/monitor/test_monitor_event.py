"""The drift event: emitted on warn / fail with the figures, never without a server; prefect.yaml's monitor
deployment and the retrain trigger agree with the `monitor` params (the cooldown is the trigger's window)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.commands.monitor.core import Figure, MonitorReport
from flows.commands.monitor.event import EVENT, emit_drift, resource_id
from stages.config.monitor import MonitorParams

REPO = Path(__file__).resolve().parents[4]


def report(outcome: str) -> MonitorReport:
    fig = Figure(name="label_js", value=0.6, warn=0.15, fail=0.35, outcome="fail", reason="r")
    return MonitorReport.model_validate(
        {
            "format": 1,
            "outcome": outcome,
            "reason": "predicted-label distance 0.600",
            "window": {"start": "s", "end": "e", "hours": 24.0},
            "champion": "3",
            "rows": {"champion": 300, "other_versions": 0, "with_text": 0},
            "label_shares": {"served": {}, "champion_test": {}},
            "confidence": {"served_mean": 0.9, "champion_test_mean": 0.9},
            "figures": [fig],
            "notes": [],
        }
    )


def test_emitted_on_warn_and_fail_only_with_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect.events

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **kw: sent.append(kw) or object())
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert emit_drift(report("fail"), "m") is False and not sent
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert emit_drift(report("pass"), "m") is False and emit_drift(report("insufficient"), "m") is False
    assert emit_drift(report("fail"), "m") is True
    assert len(sent) == 1 and sent[0]["event"] == EVENT
    assert sent[0]["resource"]["prefect.resource.id"] == resource_id("m") == "ftpipe.model.m"
    assert sent[0]["payload"]["champion"] == "3" and sent[0]["payload"]["figures"] == {"label_js": 0.6}


def test_a_server_that_is_down_is_one_log_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect.events

    def down(**kw: Any) -> None:
        raise ConnectionError("refused")

    monkeypatch.setattr(prefect.events, "emit_event", down)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert emit_drift(report("warn"), "m") is False


def test_prefect_yaml_monitor_deployment_and_trigger_agree_with_params() -> None:
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())["monitor"]
    p = MonitorParams.model_validate(shipped)
    deployments = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    (trigger,) = deployments["scheduled-retrain"]["triggers"]
    assert trigger["expect"] == [EVENT] and trigger["posture"] == "Reactive" and trigger["threshold"] == 1
    assert trigger["within"] == p.cooldown_hours * 3600
    assert trigger["match"]["prefect.resource.id"] == resource_id("*")
    monitor = deployments["monitor"]
    assert monitor["entrypoint"] == "flows/commands/monitor/flow.py:monitor"
    assert monitor["schedules"][0]["cron"] == "0 * * * *"


def test_the_monitor_flow_loads_from_its_entrypoint() -> None:
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(str(REPO / "flows/commands/monitor/flow.py") + ":monitor")
    assert flow.name == "monitor" and set(flow.parameters.properties) == {"since", "params"}
