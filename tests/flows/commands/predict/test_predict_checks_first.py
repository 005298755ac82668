"""predict checks its input before the model loads (#33 item 7) and warns about texts shorter than any the
model trained on (#33 item 3).

Before: a missing column or a blank text was reported after the model load (~10 s on a real model) and
left an empty `.OUT.parts/` folder behind; and "x" was labelled (games, 0.70) without a word, though the
clean stage had dropped every training text under 3 words.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.commands.cli import build_parser
from tests.conftest import TOPICS
from tests.factories import new_store, register_version
from tests.flows.commands.predict.test_predict import KEYWORD_MODEL, write_input

CHAR_BINS = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 10**9]
# the compact profile validate writes (stages/data/profile.py): train texts all 32-63 characters long
PROFILE = {
    "format": 1,
    "classes": sorted(TOPICS),
    "rows": {"train": 30},
    "class_counts": {"train": {c: 10 for c in TOPICS}},
    "length_bins": {
        "chars": CHAR_BINS,
        "tokens": [0, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10**9],
    },
    "length_hist": {
        "chars": {
            "train": [0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "test": [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        },
        "tokens": {"train": [0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0]},
    },
    "sample": [],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`kp`: the keyword classifier with a stored profile and `clean.min_words` 3 logged with its run;
    `bare`: the same model with neither (registered before ftpipe stored them)."""
    uri = new_store(tmp_path_factory.mktemp("mlflow"))
    register_version(uri, "kp", code=KEYWORD_MODEL.format(topics=TOPICS), profile=PROFILE)
    client = MlflowClient(uri, registry_uri=uri)
    run_id = str(client.get_model_version("kp", "1").run_id)
    client.log_param(run_id, "clean.min_words", "3")
    register_version(uri, "bare", code=KEYWORD_MODEL.format(topics=TOPICS))
    return uri


def predict(*argv: str) -> int:
    args = build_parser().parse_args(["predict", *argv, "--no-progress"])
    return int(args.func(args))


def _never_loads(*args: object, **kwargs: object) -> None:
    raise AssertionError("the model was loaded before the input was checked")


@pytest.mark.parametrize(
    ("name", "rows", "cols", "want"),
    [
        ("in.csv", [{"id": "a", "body": "shares"}], [], "no column `text`; it has: id, body"),
        ("in.jsonl", [{"id": "a", "text": "shares"}, {"id": "b", "text": "  "}], [], "row 2 (id = 'b')"),
        (
            "in.parquet",
            [{"id": f"r{i}", "text": "t" if i != 700 else None} for i in range(900)],
            [],
            "row 701",
        ),
        ("in.csv", [{"doc": "a", "text": "shares"}], ["--id-column", "id"], "no column `id`"),
    ],
)
def test_a_bad_input_is_refused_before_the_model_loads_and_leaves_no_folder(
    store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    rows: list[dict[str, object]],
    cols: list[str],
    want: str,
) -> None:
    """Row 701 lies past the first batches: the whole input is checked, not only its head."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setattr("flows.commands.predict.command.load_version", _never_loads)
    inp = write_input(tmp_path / name, rows)
    assert predict(str(inp), str(tmp_path / "out.csv"), "--model-uri", "models:/kp@champion", *cols) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and want in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no parts folder, no lock file


def test_texts_shorter_than_any_trained_on_get_one_counted_warning(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    rows = [
        {"id": "a", "text": "the market shares rose again at the bank today"},
        {"id": "b", "text": "x"},
        {"id": "c", "text": "the team won the match and the cup this season"},
    ]
    inp = write_input(tmp_path / "in.csv", rows)
    assert predict(str(inp), str(tmp_path / "out.csv"), "--model-uri", "models:/kp@champion") == 0
    said = capsys.readouterr()
    warned = [line for line in said.err.splitlines() if "shorter than" in line]
    assert len(warned) == 1, said.err
    assert warned[0].startswith("ftpipe predict: warning: 1 of 3 texts")
    assert "fewer than 3 words" in warned[0] and "clean.min_words" in warned[0]
    assert "under 32 characters" in warned[0] and "stored data profile" in warned[0]
    assert "row 2 (id = 'b')" in warned[0]
    assert pd.read_csv(tmp_path / "out.csv")["id"].tolist() == ["a", "b", "c"]  # still predicted

    assert predict(str(inp), str(tmp_path / "bare.csv"), "--model-uri", "models:/bare@champion") == 0
    assert "shorter than" not in capsys.readouterr().err  # nothing stored: nothing claimed


def test_trained_lengths_reads_the_profile_and_the_run_param() -> None:
    from flows.commands.predict.lengths import TrainedLengths

    lengths = TrainedLengths.from_records("1", PROFILE, {"clean.min_words": "3"})
    assert lengths is not None
    assert (lengths.words, lengths.chars) == (3, 32)
    assert lengths.too_short("three words, and long enough too") is False
    assert lengths.too_short("twowordsbutquite longenough_text") is True  # 2 words, 32 characters
    assert lengths.too_short("five tiny words in it") is True  # 21 characters < 32
    assert TrainedLengths.from_records("1", None, {}) is None
    assert TrainedLengths.from_records("1", {"format": 99}, {"clean.min_words": "x"}) is None
