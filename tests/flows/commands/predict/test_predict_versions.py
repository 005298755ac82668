"""`ftpipe predict --version` reads a version as promote, rollback and fetch do (`canonical_version`).

Before: `--version 01` built `models:/NAME/01`, while ` 1`, `+1` and `1.0` were taken for alias names
("no alias ` 1`"), and `1.5` was looked up as an alias too; a missing champion had its own message, not
the one `ftpipe fetch` gives. These run the real command on a keyword classifier registered in a SQLite
MLflow store under tmp (`tests/flows/commands/predict/test_predict.py`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flows.commands.cli import build_parser
from stages.registry.history import missing_alias_message
from tests.conftest import TOPICS
from tests.factories import new_store, register_version
from tests.flows.commands.predict.test_predict import KEYWORD_MODEL, write_input


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`kv`: version 1 (champion) of the keyword classifier in a SQLite store of its own."""
    uri = new_store(tmp_path_factory.mktemp("mlflow"))
    register_version(uri, "kv", code=KEYWORD_MODEL.format(topics=TOPICS))
    return uri


@pytest.fixture
def setup(store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    params = tmp_path / "params.yaml"
    params.write_text("register:\n  model_name: kv\n")
    inp = write_input(tmp_path / "in.csv", [{"id": "a", "text": "shares"}, {"id": "b", "text": "match"}])
    return {"params": params, "input": inp, "output": tmp_path / "out.csv"}


def predict(*argv: str) -> int:
    args = build_parser().parse_args(["predict", *argv, "--no-progress"])
    return int(args.func(args))


@pytest.mark.parametrize("typed", ["01", " 1", "+1", "1.0"])
def test_each_spelling_of_1_predicts_with_version_1(
    typed: str, setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    s = setup
    assert (
        predict(str(s["input"]), str(s["output"]), "--version", typed, "--params", str(s["params"])) == 0
    ), capsys.readouterr().err
    assert "with `models:/kv/1` (models:/kv/1)" in capsys.readouterr().out
    assert pd.read_csv(s["output"])["id"].tolist() == ["a", "b"]


@pytest.mark.parametrize("typed", ["1.5", "-1", "0"])
def test_a_value_that_names_no_version_is_refused_as_fetch_refuses_it(
    typed: str, setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    s = setup
    assert predict(str(s["input"]), str(s["output"]), "--version", typed, "--params", str(s["params"])) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"ftpipe predict: `{typed}` is not a model version: a version is a whole number from 1 up, such as 3 "
        "(`ftpipe history --versions` lists them)."
    )
    assert not s["output"].exists()


def test_a_version_that_is_not_there_says_so(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    s = setup
    assert predict(str(s["input"]), str(s["output"]), "--version", "09", "--params", str(s["params"])) == 1
    err = capsys.readouterr().err.strip()
    assert "registered model `kv` has no version 9; `ftpipe history --versions` lists the versions" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_a_missing_champion_gives_the_registry_message(
    sqlite_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same sentence as `ftpipe fetch champion` (Registry.missing_alias), not a second wording."""
    uri = sqlite_store
    register_version(uri, "kw3", code=KEYWORD_MODEL.format(topics=TOPICS), aliases=["challenger"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    inp = write_input(tmp_path / "in.csv", [{"id": "a", "text": "shares"}])
    capsys.readouterr()  # the store's creation
    assert predict(str(inp), str(tmp_path / "out.csv"), "--model-uri", "models:/kw3@champion") == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(": " + missing_alias_message("kw3", "champion", {"1": ["challenger"]})), err
    assert err.startswith("ftpipe predict: cannot load models:/kw3@champion") and len(err.splitlines()) == 1
