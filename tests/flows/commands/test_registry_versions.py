"""Version strings at the registry commands: `01`, ` 1`, `+1`, `1.0` all mean version 1, as in MLflow.

MLflow reads a version as an integer, the history used to compare them as strings: `ftpipe promote 01`
moved the alias to v1 but recorded "3 -> 01", and rollback then went "1 -> 01" and never back to v3;
` 1` while v1 was champion recorded a change that never happened. These run the real CLI against a real
SQLite MLflow store holding tiny registered versions (a two-file folder each, with its manifest:
tests/factories.py).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from flows.commands.cli import main as ftpipe
from stages.registry import tags as registry_tags
from stages.registry.client import Registry
from tests.factories import TINY_FILES, new_store, register_version

EQUIVALENT_TO_1 = ["01", " 1", "+1", "1.0"]
NOT_VERSIONS = ["1.5", "-1", "0", "abc1"]
_NAMES = itertools.count(1)  # one model per test: parametrized ids differ only by `01`, ` 1`, `+1`


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A SQLite MLflow store of this module's own, and its client."""
    from mlflow import MlflowClient

    uri = new_store(tmp_path_factory.mktemp("versions-store"))
    return {"uri": uri, "client": MlflowClient(uri, registry_uri=uri)}


def make_model(
    store: dict[str, Any], name: str, n: int, champion: str | None, challenger: str | None
) -> Registry:
    """Registered model `name` with versions 1..n of the tiny two-file folder (READY, complete, with its
    manifest); the gate's champion and challenger."""
    complete = {registry_tags.STATUS: registry_tags.COMPLETE, registry_tags.GATE_DECISION: "promote"}
    for _ in range(n):
        register_version(store["uri"], name, files=TINY_FILES, tags=complete, aliases=())
    reg = Registry.connect(store["uri"], name)
    if challenger:
        store["client"].set_registered_model_alias(name, registry_tags.CHALLENGER, challenger)
    if champion:
        reg.set_champion(champion, "gate", "passed every gate check", who="gate")
    return reg


@pytest.fixture
def model(store: dict[str, Any], request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh model name for this test, with the CLI pointed at the store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    monkeypatch.setenv("USER", "test-operator")
    return f"m{next(_NAMES)}-{re.sub(r'[^A-Za-z0-9]+', '-', request.node.originalname)}"


def run(*args: str) -> int:
    try:
        ftpipe(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def moves(reg: Registry) -> list[tuple[str, str | None, str]]:
    return [(e["action"], e["from"], e["to"]) for e in reg.history()]


def test_promote_01_records_version_1_and_rollback_returns_to_3(
    store: dict[str, Any], model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "champion 3 -> 01", then rollback "1 -> 01", and v3 out of rollback's reach."""
    reg = make_model(store, model, 3, champion="3", challenger=None)
    assert run("promote", "01", "--reason", "x", "--name", model, "--params", "absent.yaml") == 0
    assert f"{model}: champion 3 -> 1;" in capsys.readouterr().out
    assert reg.champion() == "1" and moves(reg)[-1] == ("promote", "3", "1")

    assert run("rollback", "--reason", "back", "--name", model, "--params", "absent.yaml") == 0
    assert f"{model}: rolled back champion 1 -> 3;" in capsys.readouterr().out
    assert reg.champion() == "3"
    assert moves(reg) == [("gate", None, "3"), ("promote", "3", "1"), ("rollback", "1", "3")]


@pytest.mark.parametrize("typed", EQUIVALENT_TO_1)
def test_promoting_the_champion_by_another_spelling_changes_nothing(
    typed: str, store: dict[str, Any], model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ` 1`, `01`, `+1` recorded a change 1 -> ` 1` that never happened (and rollback another);
    `1.0` was refused by MLflow."""
    reg = make_model(store, model, 2, champion="1", challenger="2")
    assert run("promote", typed, "--reason", "x", "--name", model, "--params", "absent.yaml") == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{model}: version 1 is already the champion; nothing changed", out + err
    assert reg.champion() == "1" and moves(reg) == [("gate", None, "1")]
    assert run("rollback", "--reason", "x", "--name", model, "--params", "absent.yaml") == 2
    assert "first champion" in capsys.readouterr().err
    assert moves(reg) == [("gate", None, "1")]


@pytest.mark.parametrize("typed", EQUIVALENT_TO_1)
def test_promote_reads_each_spelling_as_version_1(
    typed: str, store: dict[str, Any], model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = make_model(store, model, 2, champion="2", challenger=None)
    assert run("promote", typed, "--reason", "x", "--name", model, "--params", "absent.yaml") == 0
    assert f"{model}: champion 2 -> 1;" in capsys.readouterr().out
    assert reg.champion() == "1" and moves(reg)[-1] == ("promote", "2", "1")
    stored = [
        json.loads(v)
        for k, v in sorted(reg._model_tags().items())
        if k.startswith(registry_tags.HISTORY_PREFIX)
    ]
    assert stored[-1]["to"] == "1"  # written canonical, not only read so


@pytest.mark.parametrize("typed", NOT_VERSIONS)
def test_a_value_that_names_no_version_is_refused_in_one_line(
    typed: str, store: dict[str, Any], model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = make_model(store, model, 2, champion="1", challenger=None)
    assert run("promote", typed, "--reason", "x", "--name", model, "--params", "absent.yaml") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ftpipe promote: `{typed}` is not a model version: a version is a whole number")
    assert "`ftpipe history --versions` lists them" in err and len(err.splitlines()) == 1
    assert reg.champion() == "1" and moves(reg) == [("gate", None, "1")]


def test_an_old_event_written_as_01_does_not_break_rollback(
    store: dict[str, Any], model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A history written before versions were parsed: its "01" reads as 1, so rollback reaches v3."""
    reg = make_model(store, model, 3, champion="3", challenger=None)
    old = {"action": "promote", "from": "3", "to": "01", "reason": "x", "who": "ana", "at": "2026-01-01"}
    store["client"].set_registered_model_tag(model, f"{registry_tags.HISTORY_PREFIX}000002", json.dumps(old))
    store["client"].set_registered_model_alias(model, registry_tags.CHAMPION, "01")  # MLflow stores version 1
    assert run("rollback", "--reason", "back", "--name", model, "--params", "absent.yaml") == 0
    assert f"{model}: rolled back champion 1 -> 3;" in capsys.readouterr().out
    assert reg.champion() == "3"
    assert run("history", "--json", "--name", model, "--params", "absent.yaml") == 0
    hist = json.loads(capsys.readouterr().out)
    assert [(e["from"], e["to"]) for e in hist["history"]] == [(None, "3"), ("3", "1"), ("1", "3")]


@pytest.mark.parametrize("typed", EQUIVALENT_TO_1)
def test_fetch_reads_each_spelling_as_version_1(
    typed: str, store: dict[str, Any], model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: ` 1`, `+1` and `1.0` were taken for alias names ("no alias ` 1`")."""
    make_model(store, model, 2, champion="2", challenger=None)
    dest = tmp_path / "copy"
    assert run("fetch", typed, str(dest), "--name", model, "--params", "absent.yaml") == 0, (
        capsys.readouterr()
    )
    assert f"{model} version 1: all 2 files match" in capsys.readouterr().out
    assert (dest / "weights.txt").read_text() == "0.1 0.2 0.3\n"


def test_fetch_refuses_a_value_that_names_no_version(
    store: dict[str, Any], model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_model(store, model, 2, champion="2", challenger=None)
    assert run("fetch", "1.5", str(tmp_path / "copy"), "--name", model, "--params", "absent.yaml") == 2
    assert "ftpipe fetch: `1.5` is not a model version" in capsys.readouterr().err
    assert not (tmp_path / "copy").exists()


def test_a_missing_champion_names_the_versions_and_aliases_there_are(
    store: dict[str, Any], model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = make_model(store, model, 2, champion=None, challenger="1")
    assert run("fetch", "champion", str(tmp_path / "copy"), "--name", model, "--params", "absent.yaml") == 2
    assert capsys.readouterr().err.strip() == (
        f"ftpipe fetch: no `champion` alias on {model}; versions: 1 (challenger), 2; aliases: "
        "challenger -> 1. Promote one with `ftpipe promote 1 --reason ...`."
    )
    assert reg.missing_alias("champion").startswith(f"no `champion` alias on {model}; versions: 1")


def test_registry_methods_take_any_spelling(store: dict[str, Any], model: str) -> None:
    reg = make_model(store, model, 2, champion="1", challenger=None)
    assert reg.version(" 02").version in ("2", 2)
    assert reg.resolve("+2") == "2" and reg.resolve("champion") == "1"
    assert reg.promote("1.0", "again") is None
    event = reg.promote("02", "hand-checked")
    assert event is not None and (event["from"], event["to"]) == ("1", "2")
    reg.set_tags("02", {"note": "x"})
    assert reg.version("2").tags["note"] == "x"


@pytest.mark.parametrize("command", ["promote", "fetch"])
def test_a_huge_version_is_refused_at_once_not_read_as_an_outage(
    command: str, store: dict[str, Any], model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #34, item 4: `ftpipe promote 99999999999999999999` retried for 20 s, then blamed the store."""
    import time

    make_model(store, model, 2, champion="1", challenger=None)
    args = [str(tmp_path / "copy")] if command == "fetch" else ["--reason", "x"]
    start = time.monotonic()
    code = run(command, "99999999999999999999", *args, "--name", model, "--params", "absent.yaml")
    err = capsys.readouterr().err.strip()
    assert code == 2 and time.monotonic() - start < 5, err
    assert err.startswith(f"ftpipe {command}: `99999999999999999999` is larger than any model version")
    assert len(err.splitlines()) == 1 and "server" not in err
