"""`ftpipe gate VERSION`: a version rejected by a floor is judged again under params.yaml, as the docs say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from flows.commands.cli import main as ftpipe
from stages.config.register import GateParams, RegisterParams
from stages.registry.inputs import load_candidate
from stages.registry.register_run import register
from tests.conftest import REPO
from tests.registry_support import Workspace, build_classifier, write_eval_outputs

NAME = "gate-again"
TRUNC = {"max_length": 128, "truncation": "head", "head_fraction": 0.25}
DOCS = ("docs/your-data.md", "docs/registry-and-gate.md")


def run(*args: str) -> int:
    try:
        ftpipe(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _register(ws: Workspace, uri: str, kind: str, gate: GateParams) -> dict[str, Any]:
    if kind == "under-trained":  # 15 steps: macro-F1 0.84 on the fixture's test rows, the baseline 0.50
        model = ws.root / kind / "model"
        build_classifier(model, ws.texts, ws.train, ws.labels, "trained", 0, steps=15)
        write_eval_outputs(model, ws.splits, ws.labels_json, ws.root / kind / "reports")
    c = ws.candidate(kind, kind)
    cand = load_candidate(c["model"], c["metrics"], c["predictions"], c["splits"], c["labels"])
    p = RegisterParams(model_name=NAME, gate=gate, retries=0, verify_rows=8)
    # as the register stage logs them: evaluate's metrics and per-row predictions, which `gate` reads back
    extra = [c["metrics"], c["predictions"]]
    return register(p, cand, uri, params={}, truncation=TRUNC, extra_artifacts=extra)


def _params(root: Path, gate: dict[str, Any]) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump({"register": {"model_name": NAME, "gate": gate}}))


def test_the_documented_command_gives_a_version_rejected_by_a_floor_its_champion_alias(
    tmp_path: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for doc in DOCS:
        assert "ftpipe gate 1" in (REPO / doc).read_text(), doc  # the advice this test runs
    ws = Workspace(tmp_path / "ws")
    report = _register(ws, sqlite_store, "under-trained", GateParams(min_primary=0.9))  # BBC's old floor
    assert report["version"] == "1" and not report["promoted"] and report["champion"] is None
    checks = {c["name"]: c["outcome"] for c in report["gate"]["checks"]}
    assert checks["floor"] == "fail" and checks["baseline"] == "pass"

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    monkeypatch.setenv("USER", "first-day")
    _params(tmp_path, {"min_primary": 0.9})
    assert run("gate", "1") == 0  # the same floor: still rejected, recorded, champion unchanged
    out = capsys.readouterr().out
    assert "still rejected" in out and "floor" in out
    client = MlflowClient(sqlite_store)
    assert "champion" not in client.get_registered_model(NAME).aliases

    _params(tmp_path, {})  # the floor removed (null, the default): the documented fix
    assert run("gate", "1", "--reason", "0.9 was BBC's figure") == 0
    out = capsys.readouterr().out
    assert "champion - -> 1" in out, out
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    assert client.get_model_version(NAME, "1").tags["gate.decision"] == "promote"

    assert run("history", "--json") == 0
    events = json.loads(capsys.readouterr().out)["history"]
    assert [(e["action"], e["to"], e["gate"], "not_applied" in e) for e in events] == [
        ("gate", "1", "reject", True),
        ("gate", "1", "promote", False),
    ]
    assert events[1]["who"] == "first-day" and events[1]["reason"].startswith("0.9 was BBC's figure")

    # the whole card (#33 item 6): the champion's by default; it was rejected when registered, so its Use
    # section names the alias it had then
    assert run("card") == 0
    card = capsys.readouterr().out
    assert card.startswith(f"# {NAME}") and "## Lineage" in card and f'"models:/{NAME}@challenger"' in card
    assert run("card", "1") == 0 and capsys.readouterr().out == card


def test_against_a_champion_the_version_is_compared_on_the_test_split(
    tmp_path: Path, sqlite_store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "ws")
    loose = {"baseline_margin": -1.0, "baseline_tolerance": 1.0, "max_class_drop": 1.0}
    assert _register(ws, sqlite_store, "constant", GateParams(**loose))["promoted"]
    report = _register(ws, sqlite_store, "under-trained", GateParams(**loose, min_primary=0.9))
    assert report["version"] == "2" and not report["promoted"]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store)
    _params(tmp_path, loose)
    assert run("gate", "2") == 2  # no test split here: said so, nothing changed
    assert "needs their texts" in capsys.readouterr().err
    assert run("gate", "2", "--splits", str(ws.splits)) == 0
    out = capsys.readouterr().out
    assert "margin" in out and "vs champion v1" in out and "champion 1 -> 2" in out, out
    assert str(MlflowClient(sqlite_store).get_model_version_by_alias(NAME, "champion").version) == "2"
