"""Each of the five notifications reaches a local receiver once, with no secret; a refusing one fails nothing.

A run fails (`ftpipe run`), the gate rejects a candidate and a version is promoted (the register stage),
a version is promoted or rolled back by hand, drift is warn/fail (the drift stage; the monitor's is in
tests/flows/commands/monitor/), and the server swaps or refuses a version.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from flows.commands import cli
from flows.commands import registry as registry_cmd
from flows.commands.serve.follower import Follower, Refused, Served
from flows.runner import StageFailed
from stages.core.redact import NOTIFY_ENV
from stages.reports.register import RegistryReport
from tests.notify_receiver import Receiver, receiver, refused_url

SECRET = "hunter2-notify-password"


@pytest.fixture
def got(monkeypatch: pytest.MonkeyPatch) -> Any:
    with receiver() as r:
        monkeypatch.setenv(NOTIFY_ENV, r.url(SECRET))
        yield r


def no_secret(r: Receiver) -> bool:
    return all(SECRET not in raw.decode() for raw in r.raw)


def fail_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """`ftpipe run`'s body with the flow replaced by one whose finetune stage fails."""

    def retrain(**kwargs: Any) -> None:
        raise StageFailed(
            "finetune", "CUDA out of memory at batch 3; lower finetune.batch_size", log_file="x.log"
        )

    monkeypatch.setitem(sys.modules, "flows.retrain", types.SimpleNamespace(retrain=retrain))
    monkeypatch.setattr("flows.runner.dvc_holders", lambda root: [])
    monkeypatch.setattr(cli, "apply_overrides", lambda root, overrides, keep: None)
    args = argparse.Namespace(force=False, target=None, overrides=[])
    return cli._run_locked(tmp_path, args)


def test_a_failed_run(got: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fail_run(tmp_path, monkeypatch) == 1
    assert got.titles() == ["ftpipe run failed"] and no_secret(got)
    assert "stage 'finetune' failed: CUDA out of memory" in got.messages[0]["message"]
    assert "Report: x.log" in got.messages[0]["message"]


def test_a_failed_flow_tells_once_however_it_was_started(
    prefect_harness, got: Receiver, tiny_repo: Path
) -> None:
    """The flow itself sends it (a deployment's or a schedule's run has no `ftpipe run` around it), and
    `ftpipe run` around the flow adds no second message."""
    from flows.retrain import retrain

    (tiny_repo / "data.txt").write_text("alpha\nbeta\nFAIL\n")
    with pytest.raises(StageFailed):
        retrain(root=str(tiny_repo))  # as a worker runs a deployment's flow
    assert got.titles() == ["ftpipe run failed"]
    args = cli.build_parser().parse_args(["run", "--root", str(tiny_repo)])
    assert args.func(args) == 1
    assert got.titles() == ["ftpipe run failed"] * 2 and no_secret(got)
    for message in got.messages:
        assert "stage 'prepare' failed: ValueError: prepare: data.txt line 3 says FAIL" in message["message"]
        assert "Report: " in message["message"] and "prepare.log" in message["message"]


def gate_report(promote: bool) -> RegistryReport:
    checks = [
        {
            "name": "primary",
            "outcome": "pass" if promote else "fail",
            "reason": "macro_f1 0.91 vs 0.93 (-0.02)",
        },
        {"name": "drift", "outcome": "pass", "reason": "domain AUC 0.52"},
    ]
    return RegistryReport.model_validate(
        {
            "action": "registered",
            "name": "m",
            "version": "4",
            "run_id": "r",
            "aliases": ["champion"] if promote else [],
            "champion": "4" if promote else "3",
            "promoted": promote,
            "gate": {"promote": promote, "checks": checks},
        }
    )


def test_the_gate_rejects_and_promotes(got: Receiver) -> None:
    from stages.register import _tell

    _tell(gate_report(False), "reports/registry.json")
    _tell(gate_report(True), "reports/registry.json")
    assert got.titles() == ["ftpipe gate: rejected m version 4", "ftpipe: m version 4 promoted to champion"]
    assert "primary: macro_f1 0.91 vs 0.93 (-0.02)" in got.messages[0]["message"]
    assert "drift" not in got.messages[0]["message"] and no_secret(got)


class FakeRegistry:
    name = "m"

    def promote(self, version: str, reason: str) -> dict[str, str]:
        return {"from": "3", "to": version, "gate": "promote", "who": "ann", "reason": reason}

    def rollback(self, reason: str) -> dict[str, str]:
        return {"from": "4", "to": "3", "who": "ann", "reason": reason}


def test_promote_and_rollback_by_hand(got: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_cmd, "_registry", lambda args: FakeRegistry())
    args = argparse.Namespace(command="promote", version="4", reason="better on tickets")
    assert registry_cmd._cmd_promote(args) == 0
    assert registry_cmd._cmd_rollback(argparse.Namespace(command="rollback", reason="complaints")) == 0
    assert got.titles() == ["ftpipe: m version 4 promoted", "ftpipe: m rolled back to version 3"]
    assert "champion 3 -> 4" in got.messages[0]["message"] and no_secret(got)


def test_drift_warns(got: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stages.drift

    report = {
        "champion": "1",
        "domain_auc": 0.82,
        "domain_classifier": "TF-IDF + logistic regression, 5-fold CV, 300 vs 300 texts",
        "label_js": 0.02,
        "length_js": 0.01,
        "notes": [],
        "outcome": "warn",
        "params": {"register.gate.max_drift_auc": None, "register.gate.warn_drift_auc": 0.75},
        "reason": "domain AUC 0.82 at or above register.gate.warn_drift_auc 0.75",
        "texts": {"candidate_new": 300, "candidate_seen": 0, "champion": 300},
        "trained_on_record": True,
    }
    monkeypatch.setattr(stages.drift, "check", lambda profile, p, uri: report)
    monkeypatch.setattr(stages.drift, "setup_logging", lambda name: logging.getLogger(name))
    out = tmp_path / "drift.json"
    stages.drift.main(["--report", str(out)])
    assert got.titles() == ["ftpipe drift: warn against champion v1"] and no_secret(got)
    assert f"Report: {out}" in got.messages[0]["message"]


class Source:
    name, alias = "m", "champion"

    def target(self) -> str | None:
        return "5"

    def candidate(self, version: str) -> Served:
        if version == "6":
            raise Refused("smoke test", "p_sport 0.41 vs 0.93 recorded")
        return Served("m", version, None, None, None, None, True, smoke="20 rows agree")


def test_the_server_swaps_and_refuses(got: Receiver) -> None:
    follower = Follower(Source(), 30.0)
    follower.try_version("5")
    follower.try_version("6")
    assert got.titles() == ["ftpipe serve: serving m version 5", "ftpipe serve: refused m version 6"]
    assert "smoke test failed" in got.messages[1]["message"] and no_secret(got)
    assert follower.current is not None and follower.current.version == "5"


def test_a_refusing_receiver_changes_no_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NOTIFY_ENV, refused_url())
    assert fail_run(tmp_path, monkeypatch) == 1  # as without a notifier
    monkeypatch.setattr(registry_cmd, "_registry", lambda args: FakeRegistry())
    assert registry_cmd._cmd_rollback(argparse.Namespace(command="rollback", reason="x")) == 0
    follower = Follower(Source(), 30.0)
    follower.try_version("5")
    assert follower.current is not None
