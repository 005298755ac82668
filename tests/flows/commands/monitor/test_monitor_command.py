"""`ftpipe monitor`'s command: the window from the log folder, the report files, one line, the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.commands.monitor import run as command
from flows.commands.monitor.core import Reference
from stages.core.notify import NOTIFY_ENV
from tests.flows.commands.monitor.support import World, now, pick, served_rows, write_log
from tests.notify_receiver import receiver


def test_monitor_writes_its_report_and_says_the_outcome(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"serve:\n  log_dir: {tmp_path / 'log'}\nmonitor:\n  min_rows: 50\n  max_texts: 100\n")
    write_log(tmp_path / "log", served_rows(world.model, [r["text"] for r in pick(world.unseen, 80)], now()))

    def reference(params_path: str | Path, name: str | None) -> Reference:
        return world.reference

    monkeypatch.setattr(command, "champion_reference", reference)
    assert command.run_monitor(params, "2h", None, root=tmp_path) == 0
    line = capsys.readouterr().out
    assert line.startswith("ftpipe monitor: pass (champion 3, 80 row(s) in 2 h)"), line
    latest = json.loads((tmp_path / "reports/monitor/latest.json").read_text())
    assert latest["outcome"] == "pass" and latest["window"]["hours"] == 2
    assert len(list((tmp_path / "reports/monitor").glob("monitor-*.json"))) == 1


def test_no_champion_is_exit_1_and_a_bad_window_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def none(params_path: str | Path, name: str | None) -> Reference:
        raise ValueError("registered model `m` has no champion: there is nothing to compare with")

    monkeypatch.setattr(command, "champion_reference", none)
    assert command.run_monitor(tmp_path / "params.yaml", None, None, root=tmp_path) == 1
    assert "has no champion" in capsys.readouterr().err
    assert command.run_monitor(tmp_path / "params.yaml", "soon", None, root=tmp_path) == 2
    assert "--since 'soon'" in capsys.readouterr().err


def test_a_drifting_window_tells_people_once(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only sport and tech, no texts logged: the label mix alone is at least warn, and FTPIPE_NOTIFY hears it."""
    params = tmp_path / "params.yaml"
    params.write_text(f"serve:\n  log_dir: {tmp_path / 'log'}\nmonitor:\n  min_rows: 50\n")
    texts = [r["text"] for r in world.unseen if r["label"] in ("sports", "tech")][:80]
    write_log(tmp_path / "log", served_rows(world.model, texts, now()), log_texts=False)
    monkeypatch.setattr(command, "champion_reference", lambda params_path, name: world.reference)
    with receiver() as got:
        monkeypatch.setenv(NOTIFY_ENV, got.url())
        assert command.run_monitor(params, "2h", None, root=tmp_path) == 0
    assert len(got.messages) == 1 and got.titles()[0].startswith("ftpipe monitor: ")
    assert (
        "label_js" in got.messages[0]["message"] and "reports/monitor/monitor-" in got.messages[0]["message"]
    )
    assert "hunter2" not in got.raw[0].decode()
