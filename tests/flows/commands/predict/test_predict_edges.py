"""`ftpipe predict` at the edges: empty and header-only inputs, undecodable bytes, ids whose type changes,
bad rows, a full disk, a missing champion, and the command's own start (no Prefect).

Each runs the real command (in-process through the parser, or as a subprocess) on a keyword classifier
registered as an MLflow pyfunc in a SQLite store under tmp (`tests/flows/commands/predict/test_predict.py`). A full disk
cannot be made here without root (no tmpfs; RLIMIT_FSIZE gives EFBIG, not ENOSPC), so that one test
raises ENOSPC from the one function every part and output write goes through.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from flows.commands.cli import build_parser
from tests.conftest import REPO, TOPICS
from tests.factories import new_store, register_version
from tests.flows.commands.predict.test_predict import KEYWORD_MODEL, write_input

URI = "models:/kw@champion"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The keyword classifier as `kw` (alias champion) in a SQLite store of its own; the store's URI."""
    uri = new_store(tmp_path_factory.mktemp("mlflow"))
    register_version(uri, "kw", code=KEYWORD_MODEL.format(topics=TOPICS))
    return uri


@pytest.fixture
def env(store: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    return store


def predict(*argv: str) -> int:
    args = build_parser().parse_args(["predict", *argv, "--no-progress"])
    return args.func(args)


def last_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    return err.splitlines()[-1]


# ------------------------------------------------------------------------------ empty inputs


@pytest.mark.parametrize(
    ("name", "content", "out"),
    [
        ("in.csv", "", "out.parquet"),  # 0 bytes: pandas' EmptyDataError before
        ("in.csv", "id,text\n", "out.parquet"),  # header only: "Can not safely convert float64 to <U0"
        ("in.csv", "id,text\n", "out.csv"),
        ("in.jsonl", "", "out.jsonl"),  # "succeeded" silently before
        ("in.jsonl", "\n\n", "out.csv"),
    ],
)
def test_an_empty_input_gives_an_empty_output_and_says_so(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, out: str
) -> None:
    (tmp_path / name).write_text(content)
    assert predict(str(tmp_path / name), str(tmp_path / out), "--model-uri", URI) == 0
    said = capsys.readouterr().out
    assert f"0 rows in {tmp_path / name}; wrote an empty {tmp_path / out}" in said
    if out.endswith(".parquet"):
        table = pq.read_table(tmp_path / out)
        assert table.num_rows == 0 and table.column_names == ["id", "label", "score"]
        assert [str(t) for t in table.schema.types] == ["string", "string", "double"]
    elif out.endswith(".csv"):
        assert (tmp_path / out).read_text() == "id,label,score\n"
    else:
        assert (tmp_path / out).read_text() == ""
    assert not (tmp_path / f".{out}.parts").exists()


# ------------------------------------------------------------------------------ bad bytes and rows


def test_a_byte_that_is_not_utf8_names_the_line_and_the_fix(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in.csv"
    inp.write_bytes(b"id,text\n1,shares rose at the bank\n2,the team\x92s coach won the cup\n")
    assert predict(str(inp), str(tmp_path / "out.csv"), "--model-uri", URI) == 2
    line = last_line(capsys)
    assert f"{inp} line 3" in line and "0x92" in line and "UTF-8" in line and "--encoding cp1252" in line
    assert not (tmp_path / "out.csv").exists()
    # the fix it names works
    assert predict(str(inp), str(tmp_path / "out.csv"), "--model-uri", URI, "--encoding", "cp1252") == 0
    assert pd.read_csv(tmp_path / "out.csv")["label"].tolist() == ["business", "sport"]

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_bytes(b'{"id": 1, "text": "shares"}\n{"id": 2, "text": "caf\xe9 data"}\n')
    assert predict(str(jsonl), str(tmp_path / "o.jsonl"), "--model-uri", URI) == 2
    assert f"{jsonl} line 2" in last_line(capsys)


def test_ids_whose_type_changes_become_strings(env: str, tmp_path: Path) -> None:
    """Before: ArrowInvalid after the first batch (int ids, then a string id) writing Parquet."""
    rows = [{"id": i, "text": "shares bank profit"} for i in range(5)]
    rows += [{"id": "x-5", "text": "team coach cup"}, {"id": 6.5, "text": "software data"}]
    inp = write_input(tmp_path / "in.jsonl", rows)
    assert predict(str(inp), str(tmp_path / "out.parquet"), "--model-uri", URI, "--batch-size", "2") == 0
    table = pq.read_table(tmp_path / "out.parquet")
    assert str(table.schema.field("id").type) == "string"
    assert table.column("id").to_pylist() == ["0", "1", "2", "3", "4", "x-5", "6.5"]


def test_a_ragged_csv_row_names_file_and_line(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = tmp_path / "in.csv"
    inp.write_text("id,text\n1,shares rose\n2,team,coach,extra\n")
    assert predict(str(inp), str(tmp_path / "out.csv"), "--model-uri", URI) == 2
    line = last_line(capsys)
    assert str(inp) in line and "line 3" in line


def test_a_missing_text_names_the_row_and_exits_2(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp = write_input(tmp_path / "in.jsonl", [{"id": "a", "text": "shares"}, {"id": "b", "text": None}])
    assert predict(str(inp), str(tmp_path / "out.csv"), "--model-uri", URI) == 2
    assert f"{inp} row 2 (id = 'b'): `text` is missing" in last_line(capsys)


# ------------------------------------------------------------------------------ a full disk


def test_a_full_disk_names_the_path_and_the_space_and_keeps_the_parts(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC is raised from `predict_parts.write_file` (every part, manifest and output goes through it)
    on its 5th call: the filesystem cannot be filled here without root."""
    from flows.commands.predict import parts as predict_parts

    real, calls = predict_parts.write_file, []

    def full_on_fifth(path: Path, write) -> None:  # type: ignore[no-untyped-def]
        calls.append(path)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, write)

    rows = [{"id": f"r{i}", "text": f"story {i} shares bank"} for i in range(100)]
    inp = write_input(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    monkeypatch.setattr(predict_parts, "write_file", full_on_fifth)
    assert predict(str(inp), str(out), "--model-uri", URI, "--batch-size", "10", "--part-rows", "20") == 2
    line = last_line(capsys)
    assert "no space left" in line.lower() and str(tmp_path) in line and "free" in line
    assert "--no-resume" not in line and "resume" in line
    parts = sorted((tmp_path / ".out.csv.parts").glob("part-*"))
    assert len(parts) == 2 and not out.exists()  # part, manifest, part, manifest, then the 3rd part failed

    monkeypatch.setattr(predict_parts, "write_file", real)
    assert predict(str(inp), str(out), "--model-uri", URI, "--batch-size", "10", "--part-rows", "20") == 0
    assert "resumed after 40 rows" in capsys.readouterr().out
    assert pd.read_csv(out)["id"].tolist() == [r["id"] for r in rows]
    assert not (tmp_path / ".out.csv.parts").exists()


# ------------------------------------------------------------------------------ the model


def test_no_champion_names_the_versions_and_aliases_there_are(
    sqlite_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "Register a model first" though a version was registered (as challenger)."""
    uri = sqlite_store
    register_version(uri, "kw2", code=KEYWORD_MODEL.format(topics=TOPICS), aliases=["challenger"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    inp = write_input(tmp_path / "in.csv", [{"id": "a", "text": "shares"}])
    assert predict(str(inp), str(tmp_path / "out.csv"), "--model-uri", "models:/kw2@champion") == 1
    line = last_line(capsys)
    assert "cannot load models:/kw2@champion" in line and "no `champion` alias on kw2" in line
    assert "versions: 1 (challenger)" in line and "Register a model first" not in line
    assert "aliases: challenger -> 1" in line and "ftpipe promote 1 --reason" in line


def test_probabilities_need_a_model_that_serves_them(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The keyword model was logged without a `probabilities` param, as models registered before it were."""
    inp = write_input(tmp_path / "in.csv", [{"id": "a", "text": "shares"}])
    assert predict(str(inp), str(tmp_path / "out.csv"), "--model-uri", URI, "--probabilities") == 1
    line = last_line(capsys)
    assert "returned no class probabilities" in line and "register it again" in line


# ------------------------------------------------------------------------------ the command's start


def test_predict_never_imports_prefect(store: str, tmp_path: Path) -> None:
    """Before: a temporary Prefect server for every call (25 s for 200 rows predicted in 2.6 s)."""
    inp = write_input(tmp_path / "in.csv", [{"id": str(i), "text": "team coach cup"} for i in range(20)])
    code = (
        "import sys, flows.commands.cli\n"
        "try:\n    flows.commands.cli.main(sys.argv[1:])\n"
        "finally:\n    print('PREFECT' if any(m.split('.')[0] == 'prefect' for m in sys.modules) else 'CLEAN')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    proc = subprocess.run(
        [sys.executable, "-c", code, "predict", str(inp), str(tmp_path / "o.csv"), "--model-uri", URI],
        cwd=REPO,
        env={**env, "MLFLOW_TRACKING_URI": store},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "CLEAN", proc.stdout
    assert "20 rows" in proc.stdout and json.loads  # the summary is printed


def test_no_progress_bar_when_stderr_is_not_a_terminal(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log file or a pipe gets the summary line, not a carriage-return progress bar (issue 21)."""
    (tmp_path / "in.csv").write_text("id,text\n1,shares rose at the bank\n2,the team won the cup\n")
    argv = ["predict", str(tmp_path / "in.csv"), str(tmp_path / "out.csv"), "--model-uri", URI]
    args = build_parser().parse_args(argv)
    assert args.func(args) == 0  # without --no-progress; capsys's stderr is no terminal
    err = capsys.readouterr().err
    assert "rows/s]" not in err and "predict:" not in err, err
