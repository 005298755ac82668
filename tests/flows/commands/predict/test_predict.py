"""Batch prediction: streamed batches in each format, atomic output, and the command on a registered model.

The registered model is a keyword classifier logged as an MLflow pyfunc ("models from code") into a
SQLite store under tmp_path: what is tested here is the batching, the file formats and the command,
not the model. The edges (empty inputs, bad bytes, a full disk, no champion, no Prefect) are in
test_predict_edges.py, stopping and resuming in test_predict_resume.py, class probabilities in
test_predict_probabilities.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from flows.commands.cli import build_parser
from flows.commands.predict.command import (
    FORMATS,
    PredictError,
    count_rows,
    default_model_uri,
    iter_batches,
    predict_file,
)
from stages.data import sources
from tests.conftest import TOPICS, make_corpus
from tests.factories import new_store, register_version

KEYWORD_MODEL = """\
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

TOPICS = {topics!r}


class KeywordModel(PythonModel):
    def predict(self, context, model_input, params=None):
        labels, scores = [], []
        for text in model_input["text"]:
            words = set(text.lower().replace(".", " ").split())
            hits = {{label: len(words & set(kw.split())) for label, kw in TOPICS.items()}}
            best = max(hits, key=hits.get)
            labels.append(best)
            scores.append(hits[best] / max(1, sum(hits.values())))
        return pd.DataFrame({{"label": labels, "score": scores}})


mlflow.models.set_model(KeywordModel())
"""


class CountingModel:
    """In-process stand-in for a pyfunc: records batch sizes; fails on a given batch if asked."""

    def __init__(self, fail_on: int | None = None):
        self.sizes: list[int] = []
        self.fail_on = fail_on

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        self.sizes.append(len(df))
        if self.fail_on is not None and len(self.sizes) == self.fail_on:
            raise RuntimeError("model crashed")
        return pd.DataFrame({"label": [t.split()[-1] for t in df["text"]], "score": [0.5] * len(df)})


def write_input(path: Path, rows: list[dict]) -> Path:
    df = pd.DataFrame(rows)
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_output(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"doc": str})
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True, dtype={"doc": str})


ROWS = [{"doc": f"d{i:03d}", "body": f"text number {i} word{i % 3}", "extra": i} for i in range(25)]


@pytest.mark.parametrize("src,dst", [(".csv", ".parquet"), (".jsonl", ".csv"), (".parquet", ".jsonl")])
def test_streams_in_batches_and_keeps_ids_in_order(tmp_path: Path, src: str, dst: str) -> None:
    inp = write_input(tmp_path / f"in{src}", ROWS)
    sizes = [len(b) for b in iter_batches(inp, "doc", "body", batch_size=10)]
    assert sizes == [10, 10, 5]
    model = CountingModel()
    stats = predict_file(model, inp, tmp_path / f"out{dst}", "doc", "body", batch_size=10, progress=False)
    assert model.sizes == [10, 10, 5] and stats["rows"] == 25 and stats["batches"] == 3
    out = read_output(tmp_path / f"out{dst}")
    assert list(out.columns) == ["doc", "label", "score"]
    assert out["doc"].tolist() == [r["doc"] for r in ROWS]
    assert out["label"].tolist() == [f"word{i % 3}" for i in range(25)]
    assert stats["labels"] == {"word0": 9, "word1": 8, "word2": 8}


@pytest.mark.parametrize("src", [".csv", ".jsonl", ".parquet"])
def test_the_progress_bar_has_a_total(tmp_path: Path, src: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [*ROWS[:20], {"doc": "q1", "body": "a quoted text\nover two lines, with a comma", "extra": 0}]
    inp = write_input(tmp_path / f"in{src}", rows)
    if src == ".csv":  # a blank line too, which pandas skips
        inp.write_text(inp.read_text() + "\n")
    assert count_rows(inp) == 21
    stats = predict_file(CountingModel(), inp, tmp_path / "out.jsonl", "doc", "body", batch_size=10)
    assert stats["rows"] == 21 and "21/21" in capsys.readouterr().err


def test_predict_reads_every_format_ingest_reads() -> None:
    assert FORMATS is sources.FILE_FORMATS  # one table (stages/data/formats.py): a .tsv, a .pq, ...


def test_a_tsv_input_is_tab_separated_and_the_output_stays_csv_jsonl_or_parquet(tmp_path: Path) -> None:
    rows = [{"doc": f"d{i}", "body": f"text, with commas, number {i} word{i % 3}"} for i in range(12)]
    inp = tmp_path / "in.tsv"
    pd.DataFrame(rows).to_csv(inp, sep="\t", index=False)
    assert [len(b) for b in iter_batches(inp, "doc", "body", batch_size=5)] == [5, 5, 2]
    assert count_rows(inp) == 12
    stats = predict_file(
        CountingModel(), inp, tmp_path / "out.csv", "doc", "body", batch_size=5, progress=False
    )
    out = read_output(tmp_path / "out.csv")
    assert stats["rows"] == 12 and out["doc"].tolist() == [r["doc"] for r in rows]
    assert out["label"].tolist() == [f"word{i % 3}" for i in range(12)]
    with pytest.raises(
        PredictError,
        match=r"out.tsv: unknown file type `.tsv`; use one of .csv, .jsonl, .ndjson, .parquet, .pq\.",
    ):
        predict_file(CountingModel(), inp, tmp_path / "out.tsv", "doc", "body", progress=False)


def test_output_is_atomic_and_errors_name_the_problem(tmp_path: Path) -> None:
    inp = write_input(tmp_path / "in.csv", ROWS)
    out = tmp_path / "out.csv"
    out.write_text("previous result\n")
    with pytest.raises(RuntimeError, match="model crashed"):
        predict_file(
            CountingModel(fail_on=2), inp, out, "doc", "body", batch_size=10, progress=False, part_rows=10
        )
    # the output is untouched; the one batch predicted is kept for a rerun, beside it
    assert out.read_text() == "previous result\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        ".out.csv.parts",
        "in.csv",
        "out.csv",
    ]
    parts = sorted(p.name for p in (tmp_path / ".out.csv.parts").iterdir())
    assert parts == ["manifest.json", "part-000000.csv"]

    with pytest.raises(
        PredictError, match=r"in.csv: no column `text`; it has: doc, body, extra. .*--text-column"
    ):
        predict_file(CountingModel(), inp, out, "doc", "text", progress=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doc": "a", "body": "fine"}\n{not json}\n')
    with pytest.raises(PredictError, match="bad.jsonl line 2: not valid JSON"):
        predict_file(CountingModel(), bad, tmp_path / "o.jsonl", "doc", "body", progress=False)
    with pytest.raises(PredictError, match=r"unknown file type `.txt`"):
        predict_file(CountingModel(), inp, tmp_path / "o.txt", "doc", "body", progress=False)
    empty = write_input(tmp_path / "empty.parquet", [{"doc": "a", "body": None}])
    with pytest.raises(PredictError, match=r"empty.parquet row 1 \(doc = 'a'\): `body` is missing"):
        predict_file(CountingModel(), empty, tmp_path / "o.parquet", "doc", "body", progress=False)


@pytest.mark.parametrize(
    ("name", "body", "row", "why"),
    [
        ("in.csv", "", 3, "empty"),  # an empty CSV cell is read as ""
        ("in.jsonl", "  \n\t", 3, "blank"),
        ("in.jsonl", None, 3, "missing"),
        ("in.jsonl", 7, 3, "of type int, not a string"),
        ("in.parquet", None, 3, "missing"),
    ],
)
def test_empty_blank_and_non_string_texts_are_refused_naming_file_and_row(
    tmp_path: Path, name: str, body: object, row: int, why: str
) -> None:
    """The README says predict refuses empty text: before, `""` and blanks went to the model (the served
    one labelled `""` "sports" 0.38). Rows count from 1 over the whole file, across batches."""
    rows = [{"doc": f"d{i}", "body": f"text {i} word"} for i in range(4)]
    rows[row - 1]["body"] = body
    inp = write_input(tmp_path / name, rows)
    with pytest.raises(PredictError, match=rf"{name} row {row} \(doc = 'd{row - 1}'\): `body` is {why}"):
        predict_file(CountingModel(), inp, tmp_path / "o.jsonl", "doc", "body", batch_size=2, progress=False)
    assert not (tmp_path / "o.jsonl").exists()


def test_csv_output_escapes_formula_cells_and_other_formats_keep_them(tmp_path: Path) -> None:
    """A spreadsheet runs `=HYPERLINK(...)` in a CSV cell; escaped, it is text (OWASP: a leading `'`)."""
    from stages.core.csvsafe import read_csv

    ids = ['=HYPERLINK("http://x.example","click")', "+1", "-2", "@SUM(A1)", "\tx", "'quoted", "plain"]
    inp = write_input(tmp_path / "in.jsonl", [{"doc": d, "body": f"text {d} word"} for d in ids])
    predict_file(CountingModel(), inp, tmp_path / "out.csv", "doc", "body", progress=False)
    cells = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)["doc"].tolist()
    assert cells == [f"'{d}" for d in ids[:-1]] + ["plain"]
    assert read_csv(tmp_path / "out.csv", dtype={"doc": str})["doc"].tolist() == ids  # one `'` comes off
    for fmt in (".jsonl", ".parquet"):
        predict_file(CountingModel(), inp, tmp_path / f"out{fmt}", "doc", "body", progress=False)
        assert read_output(tmp_path / f"out{fmt}")["doc"].tolist() == ids


def test_default_model_uri_reads_register_model_name(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("register:\n  model_name: news-clf\n")
    assert default_model_uri(None, params) == "models:/news-clf@champion"
    assert default_model_uri("3", params) == "models:/news-clf/3"
    assert default_model_uri("challenger", params) == "models:/news-clf@challenger"


CONFIG_ECHO_MODEL = """\
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class ConfigEcho(PythonModel):
    def load_context(self, context):
        self.quantize = (context.model_config or {}).get("quantize", "unset")

    def predict(self, context, model_input, params=None):
        return pd.DataFrame({"label": [self.quantize] * len(model_input), "score": [1.0] * len(model_input)})


mlflow.models.set_model(ConfigEcho())
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A keyword classifier registered as `kw` (alias champion) in a SQLite MLflow store in tmp."""
    uri = new_store(tmp_path_factory.mktemp("mlflow"))
    register_version(uri, "kw", code=KEYWORD_MODEL.format(topics=TOPICS))
    return uri


def test_quantize_reaches_the_model_at_load(
    sqlite_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--quantize` overrides the registered model_config (register.quantize); without it, the registered
    value applies. The model here labels every row with the `quantize` it was loaded with."""
    uri = sqlite_store
    register_version(uri, "echo", code=CONFIG_ECHO_MODEL, model_config={"quantize": "none"})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    inp = write_input(tmp_path / "in.csv", [{"id": "a", "text": "some text"}, {"id": "b", "text": "more"}])
    for flag, want in (([], "none"), (["--quantize", "int8"], "int8"), (["--quantize", "none"], "none")):
        out = tmp_path / f"out{len(flag)}{want}.csv"
        args = build_parser().parse_args(
            ["predict", str(inp), str(out), "--model-uri", "models:/echo@champion", "--no-progress", *flag]
        )
        assert args.func(args) == 0
        assert pd.read_csv(out)["label"].tolist() == [want, want]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", str(inp), "x.csv", "--quantize", "int4"])


def test_predict_command_on_a_registered_model(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    rows = make_corpus(n_per_class=100)  # 300 rows: three batches of 128
    inp = write_input(tmp_path / "news.parquet", [{"id": r["id"], "text": r["text"]} for r in rows])
    out = tmp_path / "predictions.csv"
    args = build_parser().parse_args(
        ["predict", str(inp), str(out), "--model-uri", "models:/kw@champion", "--batch-size", "128"]
    )
    assert args.func(args) == 0
    assert "300 rows" in capsys.readouterr().out
    pred = pd.read_csv(out)
    assert pred["id"].tolist() == [r["id"] for r in rows]
    assert (pred["label"] == [r["label"] for r in rows]).all() and pred["score"].between(0, 1).all()

    args = build_parser().parse_args(
        ["predict", str(inp), str(tmp_path / "x.csv"), "--model-uri", "models:/kw@nope"]
    )
    assert args.func(args) == 1
    assert "cannot load models:/kw@nope" in capsys.readouterr().err


def test_the_gate_scores_a_champion_in_fp32_whatever_it_serves_with(sqlite_store: str) -> None:
    """The gate pairs the champion's labels with the candidate's fp32 evaluate predictions, so a champion
    registered with `register.quantize: int8` is still scored unquantized; `verify` loads it as served."""
    from stages.registry.client import Registry

    uri = sqlite_store
    register_version(uri, "echo8", code=CONFIG_ECHO_MODEL, model_config={"quantize": "int8"})
    reg = Registry.connect(uri, "echo8")
    assert reg.predict("1", ["a text"]) == ["none"]
    assert reg.verify("1", ["a text"], ["int8"]) == (1.0, None)
