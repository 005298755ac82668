"""One writer per output (#34 items 1 and 3): a second `ftpipe predict` on the same output is refused at
once, a finished run joins only its own parts, and an output folder it cannot write is one line.

Before: `ftpipe predict in.csv out.csv --part-rows 256 & sleep 8; ftpipe predict in.csv out.csv --part-rows
256 --version 2` left the first run exiting 0 naming /1 with rows 0-255 carrying v2's scores (the second
had emptied the parts folder and written its own first part), and the second failing with a wrong "it
resumes after the 256 rows saved". Predict into a read-only folder was an `OSError` traceback, rc 1.
The model here labels every row with its version (`v1`, `v2`), so a mixed output shows in the labels;
it waits after its first part while a file exists, so the second run surely meets a running first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from flows.commands.cli import build_parser
from flows.commands.predict import model as predict_model
from flows.commands.predict.inputs import PredictError
from flows.commands.predict.parts import PartsFolder
from tests.conftest import REPO
from tests.factories import new_store, register_version
from tests.flows.commands.predict.test_predict import write_input

VERSIONED_MODEL = """\
import os
import time

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class Versioned(PythonModel):
    calls = 0

    def predict(self, context, model_input, params=None):
        self.calls += 1
        hold = os.environ.get("KW_HOLD")  # after two batches, wait while this file exists
        while hold and self.calls > 2 and os.path.exists(hold):
            time.sleep(0.05)
        return pd.DataFrame({{"label": ["v{n}"] * len(model_input), "score": [0.5] * len(model_input)}})


mlflow.models.set_model(Versioned())
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`two`: version 1 (champion) labels every row `v1`, version 2 labels it `v2`."""
    uri = new_store(tmp_path_factory.mktemp("mlflow"))
    register_version(uri, "two", code=VERSIONED_MODEL.format(n=1))
    register_version(uri, "two", code=VERSIONED_MODEL.format(n=2), aliases=())
    return uri


def rows(n: int) -> list[dict[str, object]]:
    return [{"id": f"r{i}", "text": f"story {i} about shares"} for i in range(n)]


def test_a_second_writer_is_refused_at_once_and_the_first_writes_only_its_version(
    store: str, tmp_path: Path
) -> None:
    inp = write_input(tmp_path / "in.csv", rows(300))
    out = tmp_path / "out.csv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["MLFLOW_TRACKING_URI"] = store
    cmd = [sys.executable, "-m", "flows.commands.cli", "predict", str(inp), str(out), "--no-progress"]
    cmd += ["--model-uri", "models:/two@champion", "--batch-size", "10", "--part-rows", "20"]
    hold = tmp_path / "hold"
    hold.touch()
    first = subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**env, "KW_HOLD": str(hold)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    parts = tmp_path / ".out.csv.parts"
    try:  # the hold goes whatever fails, so the first run ends
        deadline = time.monotonic() + 240
        while not (parts / "manifest.json").exists():  # part 0 and its manifest, then it waits
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)

        before = {p.name: p.read_bytes() for p in parts.iterdir()}
        second = subprocess.run(
            [*cmd[:7], "--model-uri", "models:/two/2", *cmd[9:]],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second.returncode == 1, second.stderr[-3000:]
        err = second.stderr.strip()
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
        assert f"pid {first.pid}" in err and str(out) in err and "one writer per output" in err, err
        assert "resumes" not in err
        assert {p.name: p.read_bytes() for p in parts.iterdir()} == before  # the second touched nothing
    finally:
        hold.unlink(missing_ok=True)
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr[-3000:]
    assert "(models:/two/1)" in stdout
    assert set(pd.read_csv(out)["label"]) == {"v1"} and len(pd.read_csv(out)) == 300
    assert not parts.exists() and not (tmp_path / ".out.csv.lock").exists()


def test_a_join_refuses_parts_another_writer_made(tmp_path: Path) -> None:
    """The race itself, without the lock (as an older ftpipe would run beside this one): B empties the
    folder and writes its part 0 while A still lists its own part 0; A's join must write nothing."""
    out = tmp_path / "out.csv"
    key_a = {"model": {"uri": "models:/two/1"}, "output_format": "csv", "input_fingerprint": {"size": 1}}
    key_b = {**key_a, "model": {"uri": "models:/two/2"}}
    frame = pd.DataFrame({"id": ["a", "b"], "label": ["v1", "v1"], "score": [0.5, 0.5]})
    a = PartsFolder.open(out, key_a)
    a.add_part(frame, {"v1": 2}, list(frame.columns))
    b = PartsFolder.open(out, key_b)  # another key: starts fresh, removing A's part
    b.add_part(frame.assign(label="v2"), {"v2": 2}, list(frame.columns))
    a.add_part(frame, {"v1": 2}, list(frame.columns))
    with pytest.raises(PredictError, match=r"another writer") as caught:
        a.join(list(frame.columns))
    assert caught.value.exit_code == 1 and "part-000000.csv" in str(caught.value)
    assert not out.exists()


def test_a_resumed_part_changed_on_disk_is_not_joined(tmp_path: Path) -> None:
    """Same size, other bytes: each part's sha256 is recorded when written and checked at the join."""
    out = tmp_path / "out.csv"
    key = {"model": {"uri": "models:/two/1"}, "output_format": "csv"}
    frame = pd.DataFrame({"id": ["a", "b"], "label": ["v1", "v1"], "score": [0.5, 0.5]})
    work = PartsFolder.open(out, key)
    work.add_part(frame, {"v1": 2}, list(frame.columns))
    part = work.folder / "part-000000.csv"
    part.write_text(part.read_text().replace("v1", "v2"))
    with pytest.raises(PredictError, match="part-000000.csv"):
        work.join(list(frame.columns))
    assert not out.exists()


def _never_loads(*args: object, **kwargs: object) -> None:
    raise AssertionError("the model was loaded before the output was seen to be writable")


def test_an_output_folder_it_cannot_write_is_one_line_before_the_model_loads(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """/sys refuses new files even to root (EACCES); a chmod 0o555 folder does too when not root."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setattr(predict_model, "load_version", _never_loads)
    monkeypatch.setattr("flows.commands.predict.command.load_version", _never_loads)
    inp = write_input(tmp_path / "in.csv", rows(3))
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        targets = [Path("/sys/out.csv")] + ([locked / "out.csv"] if os.geteuid() != 0 else [])
        for out in targets:
            if os.access(out.parent, os.W_OK) and out.parent != Path("/sys"):
                continue
            args = build_parser().parse_args(
                ["predict", str(inp), str(out), "--model-uri", "models:/two@champion", "--no-progress"]
            )
            assert args.func(args) == 2
            err = capsys.readouterr().err.strip()
            assert "Traceback" not in err and len(err.splitlines()) == 1, err
            assert f"cannot write in {out.parent}" in err and "another folder" in err, err
            assert not (out.parent / f".{out.name}.parts").exists()
    finally:
        locked.chmod(0o755)
