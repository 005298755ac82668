"""The server's parts without a registry: the request formats, the in-flight bound (503 + Retry-After), the
drain on SIGTERM, the request log's cap and its dropped rows, and a smoke record's tolerance.

The app runs under uvicorn in a thread (real HTTP on a free 127.0.0.1 port) with a stand-in source whose
model sleeps, so saturation and drain are deterministic.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import uvicorn

from flows.commands.serve.app import build_app
from flows.commands.serve.follower import Follower, Refused, Served
from flows.commands.serve.payload import BadRequest, parse
from flows.commands.serve.reqlog import RequestLog
from stages.config.serve import ServeParams
from stages.registry.smoke import SmokeRecord, sanity
from tests.flows.commands.serve.support import app_running, request


class SlowModel:
    """Labels every text `a` after `delay` seconds; probabilities on request."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def predict(self, df: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        time.sleep(self.delay)
        n = len(df)
        return pd.DataFrame({"label": ["a"] * n, "score": [0.75] * n, "p_a": [0.75] * n, "p_b": [0.25] * n})


class StandIn:
    name, alias = "m", "champion"

    def __init__(self, delay: float) -> None:
        self.version, self.delay = "7", delay

    def target(self) -> str | None:
        return self.version

    def candidate(self, version: str) -> Served:
        if version == "8":
            raise Refused("smoke test", "row 0 is labelled 'b', recorded 'a'")
        return Served("m", version, "run", "hash", "files", SlowModel(self.delay), True)


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[tuple[str, uvicorn.Server, Follower, RequestLog]]:
    params = ServeParams(max_in_flight=2, retry_after_s=3, poll_seconds=0.1, log_flush_seconds=0.1)
    follower = Follower(StandIn(delay=1.0), params.poll_seconds)
    log = RequestLog(tmp_path / "log", params)
    with app_running(build_app(follower, params, log)) as (url, server):
        yield url, server, follower, log


def test_beyond_max_in_flight_is_503_with_retry_after_and_never_queued(app_server: Any) -> None:
    url, *_ = app_server
    answers: list[tuple[int, dict[str, str], Any]] = []
    body = {"instances": ["one"]}
    threads = [
        threading.Thread(target=lambda: answers.append(request(f"{url}/invocations", body))) for _ in range(3)
    ]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join()
    codes = sorted(a[0] for a in answers)
    assert codes == [200, 200, 503], answers
    (busy,) = [a for a in answers if a[0] == 503]
    assert busy[1]["retry-after"] == "3" and busy[1]["x-model-version"] == "7"
    assert "serve.max_in_flight = 2" in busy[2]["message"]


def test_a_refused_candidate_leaves_the_served_one_and_is_said_in_one_paragraph(app_server: Any) -> None:
    url, _, follower, _ = app_server
    follower.source.version = "8"
    deadline = time.monotonic() + 10
    while not follower.refused:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status = request(f"{url}/version")[2]
    assert status["version"] == "7" and status["alias_target"] == "8"
    (refusal,) = status["refused"]
    assert refusal["paragraph"] == (
        "Refused m version 8 (@champion points at it): its smoke test failed: row 0 is labelled 'b', recorded "
        "'a'. Version 7 keeps serving; the server tries again when @champion moves again."
    )
    time.sleep(0.5)
    assert len(follower.refused) == 1  # not retried while the alias stays


def test_sigterm_lets_the_requests_in_flight_finish(app_server: Any) -> None:
    url, server, _, log = app_server
    answers: list[Any] = []
    t = threading.Thread(target=lambda: answers.append(request(f"{url}/invocations", {"inputs": ["x", "y"]})))
    t.start()
    time.sleep(0.3)
    server.handle_exit(signal.SIGTERM, None)  # what uvicorn's SIGTERM handler does
    t.join()
    assert answers[0][0] == 200 and answers[0][2]["version"] == "7"
    deadline = time.monotonic() + 10
    while not server.started or not log.closed.is_set():  # the lifespan's end: the last rows written
        assert time.monotonic() < deadline
        time.sleep(0.05)
    rows = pq.read_table(log.folder).to_pandas()
    assert len(rows) == 2 and list(rows["row"]) == [0, 1] and set(rows["version"]) == {"7"}
    assert (
        rows["tokens"].isna().all() and rows["windows"].isna().all()
    )  # not ftpipe's classifier: null counts


def test_the_server_counts_texts_as_the_tokenize_stage_does(tmp_path: Path) -> None:
    """`text_counter` reads a loaded version's tokenizer and windowing config; its counts are the tokenize
    stage's columns (n_tokens, n_unk, n_windows, truncated), words of an unknown script included."""
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from flows.commands.serve.follower import text_counter
    from stages.config.tokenize import TokenizeParams
    from stages.tokenize import encode_batch
    from tests.conftest import build_tokenizer, make_corpus

    corpus = [r["text"] for r in make_corpus()]
    tok = AutoTokenizer.from_pretrained(build_tokenizer(corpus, tmp_path / "tok"))
    config = {"max_length": 16, "truncation": "head+tail", "head_fraction": 0.25, "windows": 3}
    inner = SimpleNamespace(tokenizer=tok, config=config)
    counter = text_counter(SimpleNamespace(unwrap_python_model=lambda: inner))
    assert counter is not None and text_counter(SlowModel(0)) is None  # another flavour: no counts
    texts = [corpus[0], " ".join(corpus[:6]), "λογος και αριθμος " + corpus[1], "x" * 20_000]
    want = encode_batch(tok, texts, TokenizeParams(model="x", **config))
    got = counter(texts)
    assert [c.tokens for c in got] == want["n_tokens"] and [c.unknown for c in got] == want["n_unk"]
    assert [c.windows for c in got] == want["n_windows"] and [c.truncated for c in got] == want["truncated"]
    assert got[2].unknown == 3 and got[1].windows == 3 and got[1].truncated


@pytest.mark.parametrize(
    ("body", "texts"),
    [
        (b'{"dataframe_records": [{"text": "a"}, {"text": "b", "id": 3}]}', ["a", "b"]),
        (b'{"dataframe_split": {"columns": ["text"], "data": [["a"], ["b"]]}}', ["a", "b"]),
        (b'{"instances": ["a", "b"]}', ["a", "b"]),
        (b'{"instances": [{"text": "a"}]}', ["a"]),
        (b'{"inputs": {"text": ["a", "b"]}}', ["a", "b"]),
        (b'{"inputs": {"text": "a"}, "params": {"probabilities": true, "other": 1}}', ["a"]),
    ],
)
def test_every_request_format_of_mlflow_models_serve(body: bytes, texts: list[str]) -> None:
    assert parse(body, "application/json", 10).texts == texts


def test_csv_and_the_probabilities_param() -> None:
    assert parse(b"id,text\n1,hello\n2,world\n", "text/csv", 10).texts == ["hello", "world"]
    assert parse(b'{"instances": ["a"], "params": {"probabilities": true}}', "", 10).probabilities


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "the body is not JSON (Expecting value at line 1 column 1)"),
        (b"[1]", "the body is a JSON list, not an object"),
        (b'{"dataframe_records": [{"txt": "a"}]}', "row 0: no `text` field (fields ['txt'])"),
        (
            b'{"dataframe_records": [{"text": "a"}, {"text": null}]}',
            "row 1: the text is missing (None or NaN)",
        ),
        (b'{"instances": ["a", 5]}', "row 1: the text is of type int, not a string"),
        (b'{"inputs": ["a"], "instances": ["b"]}', "send exactly one of"),
        (b'{"inputs": ["a"], "params": {"probabilities": "yes"}}', "params.probabilities is 'yes'"),
        (b'{"inputs": ["a", "b", "c"]}', "3 rows is more than serve.max_rows = 2"),
    ],
)
def test_a_bad_request_is_one_line_naming_the_row_and_the_fix(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse(body, "application/json", 2)
    assert message in str(err.value) and "\n" not in str(err.value)


def _rows(n: int, text: str = "t") -> list[dict[str, Any]]:
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    return [
        {"time": now, "request_id": "r", "row": i, "version": "1", "label": "a", "score": 0.5,
         "probabilities": [("a", 0.5), ("b", 0.5)], "text": text * 50}
        for i in range(n)
    ]  # fmt: skip


def test_the_request_log_stays_under_its_cap_and_counts_what_it_drops(tmp_path: Path) -> None:
    params = ServeParams(log_max_bytes=20_000, log_queue_rows=100, log_texts=True)
    log = RequestLog(tmp_path / "log", params)
    for _ in range(30):
        log.add(_rows(50))
        log.flush()
        assert sum(f.stat().st_size for f in log.segments()) <= params.log_max_bytes
    assert log.removed_segments > 0 and log.counts()["written_rows"] == 1500
    assert pq.read_table(log.folder).to_pandas()["text"].str.len().min() == 50  # log_texts: kept
    log.add(_rows(101))  # beyond log_queue_rows: dropped whole, counted
    assert log.counts()["dropped_queue_full"] == 101
    log.folder.rename(tmp_path / "gone")  # a folder that cannot be written (as a full disk): counted
    (tmp_path / "log").write_text("not a folder")
    log.add(_rows(5))
    log.flush()
    assert log.counts()["dropped_write_failed"] == 5 and log.counts()["dropped_rows"] == 106


def test_sampling_and_no_texts_by_default(tmp_path: Path) -> None:
    import random

    log = RequestLog(tmp_path / "log", ServeParams(sample_rate=0.25), random.Random(0))
    log.add(_rows(2000))
    log.flush()
    rows = pq.read_table(log.folder).to_pandas()
    assert 400 < len(rows) < 600 and rows["text"].isna().all()


def test_a_smoke_record_is_reproduced_within_its_tolerance() -> None:
    out = pd.DataFrame({"label": ["a", "b"], "score": [0.9, 0.505], "p_a": [0.9, 0.495], "p_b": [0.1, 0.505]})
    rec = SmokeRecord.from_output(["x", "y"], out)
    assert SmokeRecord.from_json(rec.to_json(), "r") == rec
    near = out.assign(p_a=[0.895, 0.5004], p_b=[0.105, 0.4996], label=["a", "a"])  # a near tie may swap
    assert rec.mismatch(near, 0.01) is None
    far = out.assign(p_a=[0.7, 0.495], p_b=[0.3, 0.505])
    assert "row 0's probabilities differ from those recorded at registration by up to 0.2" in str(
        rec.mismatch(far, 0.01)
    )
    assert "recorded 'a'" in str(rec.mismatch(out.assign(label=["b", "b"]), 0.01))
    assert sanity(out, 2, ["a", "b"], 0.01) is None
    assert "not one of the version's labels" in str(sanity(out, 2, ["a"], 0.01))
