"""`ftpipe serve` follows its alias: swaps under load without a failed request, refuses a tampered candidate
and one whose smoke test fails (the old version keeps answering), logs one row per answered text, and
drains and exits 0 on SIGTERM.

A tiny version is registered by the register stage's own code in a SQLite store (recording its smoke set)
and copied as versions 2 to 4 (cheaper than registering again); version 3's copy has one weights byte
changed, version 4's smoke record is replaced by predictions it does not make. The server is a real `ftpipe serve` process (real HTTP) polling
every 0.3 s. The tests run in file order on one server.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from stages.registry import tags as registry_tags
from stages.registry.smoke import SmokeRecord
from stages.serving.textclf import native_bf16
from tests.flows.commands.serve.support import Server, copy_version, register_versions, request, serve

NAME = "served"
POLL = 0.3


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("serve")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ws = register_versions(root, uri, NAME, 1)
    client = MlflowClient(uri, uri)
    assert copy_version(client, root, NAME, "1") == "2"
    # version 3: one byte of its weights changed in the artifact store (as someone with write access could)
    assert copy_version(client, root, NAME, "1", weights_byte=True) == "3"
    # version 4: a smoke record its model does not reproduce (every probability moved by 0.2)
    assert copy_version(client, root, NAME, "1") == "4"
    mv = client.get_model_version(NAME, "4")
    path = mv.tags[registry_tags.SMOKE]
    rec = SmokeRecord.from_json(Path(client.download_artifacts(mv.run_id, path, str(root))).read_text(), path)
    bad = SmokeRecord(
        rec.texts, rec.labels, rec.classes, [[abs(p - 0.2) for p in row] for row in rec.probabilities]
    )
    client.log_text(mv.run_id, bad.to_json(), "smoke-bad.json")
    client.set_model_version_tag(NAME, "4", registry_tags.SMOKE, "smoke-bad.json")
    client.set_registered_model_alias(NAME, "champion", "1")
    return {"root": root, "uri": uri, "client": client, "texts": ws.texts}


class Traffic:
    """Threads posting requests of 1 to 3 texts until stopped; every answer kept."""

    def __init__(self, url: str, texts: list[str], threads: int = 3) -> None:
        self.url, self.texts = url, texts
        self.answers: list[tuple[int, str | None, Any]] = []
        self.sent_texts = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, i: int) -> None:
        n = 0
        while not self._stop.is_set():
            rows = [{"text": self.texts[(i * 7 + n + k) % len(self.texts)]} for k in range(1 + n % 3)]
            status, headers, body = request(f"{self.url}/invocations", {"dataframe_records": rows})
            with self._lock:
                self.answers.append((status, headers.get("x-model-version"), body))
                if status == 200:
                    self.sent_texts += len(rows)
            n += 1

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def versions_seen(self) -> list[str]:
        with self._lock:
            return [v for _, v, _ in self.answers if v]


@pytest.fixture(scope="module")
def server(store: dict[str, Any]) -> Iterator[Server]:
    settings = {"poll_seconds": POLL, "log_dir": str(store["root"] / "log"), "log_flush_seconds": 0.2}
    with serve(store["root"] / "work", store["uri"], NAME, settings) as srv:
        yield srv


ANSWERED: Counter[str] = Counter()  # texts answered per test, for the request-log test


def _check(traffic: Traffic) -> None:
    assert traffic.answers, "no request was answered"
    for status, header, body in traffic.answers:
        assert status == 200, body
        assert header == body["version"] and body["name"] == NAME
        assert all(set(p) == {"label", "score"} for p in body["predictions"])
    ANSWERED["texts"] += traffic.sent_texts


def test_it_serves_the_alias_and_moves_with_it_without_a_failed_request(
    store: dict[str, Any], server: Server
) -> None:
    client: MlflowClient = store["client"]
    status = server.version()
    assert status["version"] == "1" and status["alias"] == "champion" and status["run_id"]
    assert (
        status["weights_hash"]
        and status["loaded_at"]
        and "reproduced its 8 recorded rows" in status["smoke_test"]
    )
    assert status["computes_in"] == "fp32"  # serve.precision's default
    with Traffic(server.url, store["texts"]) as traffic:
        for target in ("2", "1"):
            time.sleep(0.5)
            moved = time.monotonic()
            client.set_registered_model_alias(NAME, "champion", target)
            status = server.wait_for(lambda s, t=target: s["version"] == t, 60, f"version {target} served")
            took = time.monotonic() - moved
            assert took <= POLL + status["load_seconds"] + 3.0, (took, status)  # + the test's own polling
            seen = len(traffic.versions_seen())
            deadline = time.monotonic() + 20
            while traffic.versions_seen()[seen:].count(target) == 0:
                assert time.monotonic() < deadline, "no request answered by the new version"
                time.sleep(0.05)
        time.sleep(0.3)
    _check(traffic)
    assert {"1", "2"} <= set(traffic.versions_seen())
    assert server.version()["swaps"] == 3  # the first load, 2, back to 1


def test_a_tampered_candidate_and_one_failing_its_smoke_test_are_refused(
    store: dict[str, Any], server: Server
) -> None:
    client: MlflowClient = store["client"]
    with Traffic(server.url, store["texts"], threads=2) as traffic:
        client.set_registered_model_alias(NAME, "champion", "3")
        status = server.wait_for(lambda s: any(r["version"] == "3" for r in s["refused"]), 60, "v3 refused")
        client.set_registered_model_alias(NAME, "champion", "4")
        status = server.wait_for(lambda s: any(r["version"] == "4" for r in s["refused"]), 60, "v4 refused")
        time.sleep(2 * POLL)  # polls that find the alias where it was do not try again
    _check(traffic)
    assert set(traffic.versions_seen()) == {"1"}
    assert status["version"] == "1" and status["alias_target"] == "4"
    (v3,) = [r for r in status["refused"] if r["version"] == "3"]
    (v4,) = [r for r in status["refused"] if r["version"] == "4"]
    for refusal, step, cause in (
        (v3, "verification", "artifacts/model/model.safetensors"),
        (v4, "smoke test", "differ from those recorded at registration"),
    ):
        text = refusal["paragraph"]
        assert "\n" not in text and f"Refused {NAME} version {refusal['version']}" in text, text
        assert refusal["step"] == step and f"its {step} failed" in text and cause in text, text
        assert "Version 1 keeps serving" in text, text
        assert text in server.output()  # the server's log says the same paragraph
    assert len(status["refused"]) == 2  # each tried once: not again while the alias stays
    client.set_registered_model_alias(NAME, "champion", "1")


def declared_too_large(url: str, size: int) -> tuple[int, str]:
    """Send the headers of a `size`-byte body and a few bytes of it; the answer (sent before the rest)."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = f"POST /invocations HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}Content-Length: {size}\r\n\r\n".encode() + b'{"inputs": ["xxxx')
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"]


def test_bounds_a_bad_row_and_the_probabilities_on_request(server: Server) -> None:
    url = f"{server.url}/invocations"
    status, headers, body = request(
        url, {"inputs": ["a text about shares", "the striker scored"], "params": {"probabilities": True}}
    )
    assert status == 200 and headers["x-model-version"] == body["version"] == "1"
    assert all(len([k for k in p if k.startswith("p_")]) >= 2 for p in body["predictions"])
    for bad, fragment in (
        ({"dataframe_records": [{"text": "fine"}, {"text": "  "}]}, "row 1: the text is blank"),
        ({"dataframe_records": [{"text": "x"}] * 300}, "300 rows is more than serve.max_rows = 256"),
        ({"text": ["x"]}, "send exactly one of dataframe_records"),
    ):
        status, headers, body = request(url, bad)
        assert status == 400 and fragment in body["message"] and "\n" not in body["message"], body
        assert headers["x-model-version"] == "1"
    status, message = declared_too_large(server.url, 2 << 20)
    assert status == 413 and "serve.max_request_bytes = 1048576" in message, message
    split = {"dataframe_split": {"columns": ["id", "text"], "data": [[1, "shares rose"]]}}
    assert request(url, split)[0] == 200
    ANSWERED["texts"] += 2 + 1


# Latin letters to Greek ones: words the version's tokenizer (built from the corpus's texts) never saw
GREEK = str.maketrans("abcdefghijklmnopqrstuvwxyz", "αβψδεφγηιξκλμνοπθρστυωςχυζ")


def test_the_request_log_holds_how_the_version_read_each_text(store: dict[str, Any], server: Server) -> None:
    """Tokens, unknown tokens and windows per answered row, from the version's own tokenizer; no text."""
    known = store["texts"][0].lower()
    status, _, body = request(f"{server.url}/invocations", {"inputs": [known, known.translate(GREEK)]})
    assert status == 200 and len(body["predictions"]) == 2
    ANSWERED["texts"] += 2
    words = sum(any(c.isalpha() for c in w) for w in known.split())  # each one unknown token in Greek
    deadline, rows = time.monotonic() + 20, None
    while rows is None or not (rows["unknown_tokens"] >= words).any():  # the Greek row is written
        assert time.monotonic() < deadline, "the request's rows were not logged"
        time.sleep(0.3)
        rows = pq.read_table(store["root"] / "log").to_pandas() if (store["root"] / "log").exists() else None
    greek = rows.loc[rows["unknown_tokens"].idxmax()]  # earlier requests' texts are the corpus's own
    ours = rows[rows["request_id"] == greek["request_id"]].set_index("row")
    assert len(ours) == 2 and ours["text"].isna().all()  # serve.log_texts: false
    assert ours.loc[0, "tokens"] >= ours.loc[1, "tokens"] > 2  # a known word may be several pieces
    # every Greek word is one unknown token; [CLS], [SEP], digits and punctuation are known
    assert ours.loc[1, "unknown_tokens"] == words > (ours.loc[1, "tokens"] - 2) / 2
    assert (
        ours.loc[0, "unknown_tokens"] * 5 < ours.loc[1, "unknown_tokens"]
    )  # (a text it trained on may hold one)
    assert list(ours["windows"]) == [1, 1]  # registered with one window (tokenize.windows' default)
    assert list(ours["truncated"]) == [t > 128 for t in ours["tokens"]]


def test_sigterm_drains_then_the_log_holds_one_row_per_answered_text(
    store: dict[str, Any], server: Server
) -> None:
    answers: list[int] = []
    big = {"dataframe_records": [{"text": " ".join(store["texts"][:12])}] * 256}

    def slow() -> None:
        try:
            answers.append(request(f"{server.url}/invocations", big, timeout=120)[0])
        except OSError as exc:  # cut off
            answers.append(repr(exc))  # type: ignore[arg-type]

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)
    assert server.stop() == 0, server.output()
    t.join()
    assert answers == [200], answers  # in flight at SIGTERM: answered, not cut off
    ANSWERED["texts"] += 256
    rows = pq.read_table(store["root"] / "log").to_pandas() if (store["root"] / "log").exists() else None
    assert rows is not None
    assert len(rows) == ANSWERED["texts"], (len(rows), ANSWERED)
    assert set(rows["version"]) <= {"1", "2"} and rows["text"].isna().all()  # serve.log_texts: false
    assert rows["probabilities"].map(len).min() >= 2
    assert rows[["tokens", "unknown_tokens", "windows", "truncated"]].notna().all().all()  # every row counted
    assert "Finished server process" in server.output()


def test_serve_precision_and_quantize_reach_the_loaded_version(store: dict[str, Any], tmp_path: Path) -> None:
    """serve.precision / serve.quantize become the model_config each version loads with, and /version's
    `computes_in` says what they resolved to on this machine."""
    import mlflow.pyfunc

    from flows.commands.serve.command import served_config
    from flows.commands.serve.follower import _computes_in
    from stages.config.register import RetryPolicy
    from stages.config.serve import ServeParams
    from stages.registry.integrity import download_verified
    from stages.registry.tracking import use_store

    assert served_config(ServeParams()) == {"precision": "fp32"}  # quantize as registered
    auto = served_config(ServeParams(precision="auto"))
    int8 = served_config(ServeParams(precision="fp32", quantize="int8"))
    assert int8 == {"precision": "fp32", "quantize": "int8"}
    mv = store["client"].get_model_version(NAME, "1")
    use_store(store["uri"])  # as the server's RegistrySource does: `models:/` downloads read it
    local = download_verified(mv, store["uri"], str(tmp_path), RetryPolicy())
    found = {
        str(cfg): _computes_in(mlflow.pyfunc.load_model(local, model_config=cfg))
        for cfg in ({"precision": "fp32"}, auto, int8)
    }
    assert list(found.values()) == ["fp32", "bf16" if native_bf16() else "fp32", "int8"]
