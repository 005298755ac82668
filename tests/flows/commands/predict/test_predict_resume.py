"""A stopped `ftpipe predict` keeps its parts, and the same command again finishes the same bytes.

Real stops, no mocks: the registered model (a keyword classifier logged as an MLflow pyfunc in a SQLite
store under tmp) raises on a text holding CRASH while `KW_CRASH` is set, and sleeps `KW_SLOW` seconds a
batch so that a subprocess can be killed with SIGKILL while it writes. Before, a stopped run lost every
row it had predicted (28k rows after 240 s of a 1.12M-row CSV).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.commands.cli import build_parser
from tests.conftest import REPO, TOPICS
from tests.factories import new_store, register_version
from tests.flows.commands.predict.test_predict import write_input

STOPPABLE_MODEL = """\
import os
import time

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

TOPICS = {topics!r}


class StoppableKeywordModel(PythonModel):
    def predict(self, context, model_input, params=None):
        if os.environ.get("KW_SLOW"):
            time.sleep(float(os.environ["KW_SLOW"]))
        texts = list(model_input["text"])
        if os.environ.get("KW_CRASH") and any("CRASH" in t for t in texts):
            raise RuntimeError("injected crash")
        labels, scores = [], []
        for text in texts:
            words = set(text.lower().replace(".", " ").split())
            hits = {{label: len(words & set(kw.split())) for label, kw in TOPICS.items()}}
            best = max(hits, key=hits.get)
            labels.append(best)
            scores.append(hits[best] / max(1, sum(hits.values())) + len(text) / 1e4)
        return pd.DataFrame({{"label": labels, "score": scores}})


mlflow.models.set_model(StoppableKeywordModel())
"""
URI = "models:/stop@champion"
N_ROWS, CRASH_ROW = 1000, 537


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = new_store(tmp_path_factory.mktemp("mlflow"))
    register_version(uri, "stop", code=STOPPABLE_MODEL.format(topics=TOPICS))
    return uri


def rows(n: int = N_ROWS, crash: int | None = CRASH_ROW) -> list[dict[str, object]]:
    words = [" ".join(v.split()[i % 5 : i % 5 + 3]) for i, v in enumerate(TOPICS.values())]
    out = [{"id": i, "text": f"story {i}: {words[i % 3]} and more"} for i in range(n)]
    if crash is not None:
        out[crash - 1]["text"] = "a CRASH story about shares"
    return out


def predict(*argv: str) -> int:
    args = build_parser().parse_args(["predict", *argv, "--no-progress"])
    return args.func(args)


@pytest.mark.parametrize("fmt", [".csv", ".parquet", ".jsonl"])
def test_a_crash_mid_file_then_the_same_command_gives_the_same_bytes(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    inp = write_input(tmp_path / "in.jsonl", rows())
    out, whole = tmp_path / f"out{fmt}", tmp_path / f"whole{fmt}"
    opts = ["--model-uri", URI, "--batch-size", "16", "--part-rows", "100"]  # parts of 112 rows

    monkeypatch.setenv("KW_CRASH", "1")
    with pytest.raises(RuntimeError, match="injected crash"):
        predict(str(inp), str(out), *opts)
    assert "the same command resumes after 448 rows" in capsys.readouterr().err  # 4 parts of 112
    assert not out.exists() and len(list((tmp_path / f".out{fmt}.parts").glob("part-*"))) == 4

    monkeypatch.delenv("KW_CRASH")
    assert predict(str(inp), str(out), *opts) == 0
    said = capsys.readouterr().out
    assert f"{N_ROWS} rows from" in said and f"{N_ROWS - 448} predicted now" in said
    assert "resumed after 448 rows" in said
    assert not (tmp_path / f".out{fmt}.parts").exists()

    assert predict(str(inp), str(whole), *opts) == 0  # uninterrupted
    assert f"({N_ROWS} predicted now)" in capsys.readouterr().out
    assert out.read_bytes() == whole.read_bytes()


def test_other_input_model_or_settings_start_fresh_and_say_why(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    inp = write_input(tmp_path / "in.csv", rows())
    out = tmp_path / "out.csv"
    opts = ["--model-uri", URI, "--batch-size", "16", "--part-rows", "100"]
    monkeypatch.setenv("KW_CRASH", "1")
    with pytest.raises(RuntimeError):
        predict(str(inp), str(out), *opts)
    monkeypatch.delenv("KW_CRASH")
    capsys.readouterr()

    write_input(inp, rows(crash=None))  # the input changed: its parts are not mixed in
    assert predict(str(inp), str(out), *opts) == 0
    said = capsys.readouterr().out
    assert "started fresh" in said and "input_fingerprint" in said and f"({N_ROWS} predicted now)" in said

    monkeypatch.setenv("KW_CRASH", "1")
    write_input(inp, rows())
    with pytest.raises(RuntimeError):
        predict(str(inp), str(out), *opts)
    monkeypatch.delenv("KW_CRASH")
    capsys.readouterr()
    assert predict(str(inp), str(out), "--model-uri", URI, "--batch-size", "8", "--part-rows", "100") == 0
    said = capsys.readouterr().out
    assert "started fresh" in said and "batch_size" in said

    write_input(inp, rows())
    monkeypatch.setenv("KW_CRASH", "1")
    with pytest.raises(RuntimeError):
        predict(str(inp), str(out), *opts)
    monkeypatch.delenv("KW_CRASH")
    assert predict(str(inp), str(out), *opts, "--no-resume") == 0
    said = capsys.readouterr().out
    assert "started fresh" in said and "--no-resume" in said and f"({N_ROWS} predicted now)" in said


def listed_parts(manifest: Path) -> int:
    """How many parts the (atomically replaced) manifest lists; 0 before the first is written."""
    try:
        return len(json.loads(manifest.read_text(encoding="utf-8"))["parts"])
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def test_a_run_killed_with_sigkill_resumes_where_its_parts_end(store: str, tmp_path: Path) -> None:
    inp = write_input(tmp_path / "in.csv", rows(400, crash=None))
    out, whole = tmp_path / "out.parquet", tmp_path / "whole.parquet"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["MLFLOW_TRACKING_URI"] = store
    cmd = [sys.executable, "-m", "flows.commands.cli", "predict", str(inp), str(out), "--model-uri", URI]
    cmd += ["--batch-size", "10", "--part-rows", "20", "--no-progress"]
    parts = tmp_path / ".out.parquet.parts"
    proc = subprocess.Popen(
        cmd, cwd=REPO, env={**env, "KW_SLOW": "0.1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    while listed_parts(parts / "manifest.json") < 3:  # a part counts once the manifest lists it
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert not out.exists()

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = int(done.stdout.split("resumed after ")[1].split()[0])
    assert resumed >= 60 and resumed % 20 == 0 and f"({400 - resumed} predicted now" in done.stdout
    again = subprocess.run(
        [*cmd[:5], str(whole), *cmd[6:]], cwd=REPO, env=env, capture_output=True, timeout=300
    )
    assert again.returncode == 0
    assert out.read_bytes() == whole.read_bytes()
