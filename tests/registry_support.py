"""Helpers for the register and registry tests: a real `mlflow server`, tiny classifiers and their inputs.

The classifiers are tiny BERTs with the mean-pooling head (the pipeline default) whose quality is set on purpose:
`trained` (a few dozen AdamW steps: near-perfect on the fixture corpus), `constant` (always one class) and
`wrong` (the trained one with its head rolled, so it is almost always wrong). The inputs mimic what
finetune and evaluate write: the model folder, metrics.json, predictions.csv, the splits and labels.json.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stages.reports.profile import DataProfile
from tests.conftest import TINY_BERT_SHAPE, build_splits, build_tokenizer, make_corpus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def hanging_server() -> Iterator[int]:
    """A socket on 127.0.0.1 that accepts every connection and never answers; yields its port."""
    srv = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(srv.accept()[0])  # kept open, never read or answered

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


class Proxy:
    """An HTTP proxy on 127.0.0.1 in front of a real MLflow server that can fail, hang or kill on cue.

    `rule(method, path)` says what to do with each request: "forward", "fail" (answer 500), "hang" (never
    answer) or "kill" (SIGKILL process `pid`, then drop the request). `seen` lists (method, path) of every
    request, so a test can tell how far a client got.
    """

    def __init__(self, upstream: str, rule: Callable[[str, str], str] = lambda m, p: "forward"):
        self.upstream = urlsplit(upstream)
        self.rule, self.pid, self.seen = rule, None, []
        self.hung = threading.Event()  # set at teardown: hung requests may end
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.seen.append((self.command, self.path))
                action = proxy.rule(self.command, self.path)
                if action == "kill":
                    os.kill(proxy.pid, signal.SIGKILL)
                    proxy.hung.wait(30)
                    return
                if action == "hang":
                    proxy.hung.wait(60)
                    return
                if action == "fail":
                    out, status, ctype = b'{"error_code": "INTERNAL_ERROR"}', 500, "application/json"
                else:
                    conn = http.client.HTTPConnection(
                        proxy.upstream.hostname, proxy.upstream.port, timeout=60
                    )
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                    }
                    conn.request(self.command, self.path, body, headers)
                    resp = conn.getresponse()
                    out, status = resp.read(), resp.status
                    ctype = resp.getheader("Content-Type", "application/json")
                    conn.close()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def uri(self, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def close(self) -> None:
        self.hung.set()
        self.server.shutdown()
        self.server.server_close()


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers 200; fail early if `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


# MLflow 3.17's server starts 8 huey job consumers (its asynchronous jobs, unused here) beside the app:
# 10 processes that each import MLflow. Off, a server is ready in 8-9 s instead of 14-18 s (2026-12-07,
# 2-vCPU Intel Xeon, loaded) and leaves no consumer behind when its parent is terminated.
NO_JOB_RUNNER = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def start_mlflow_server(root: Path, backend: str | None = None, ready_s: float = 90) -> Iterator[str]:
    """Run `mlflow server` on 127.0.0.1 with its artifact folder under `root` and `backend` as its store
    (default: SQLite under `root`); yield its URI. None of the test process's MLFLOW_ settings reach it."""
    port = free_port()
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed at teardown
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--backend-store-uri", backend or f"sqlite:///{root / 'mlflow.db'}"]
    cmd += ["--artifacts-destination", str(root / "artifacts"), "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | NO_JOB_RUNNER
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{uri}/health", ready_s, proc)
    except Exception:
        proc.terminate()
        log.close()
        raise RuntimeError((root / "server.log").read_text()[-3000:]) from None
    try:
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def build_classifier(
    out: Path,
    texts: list[str],
    train: list[dict[str, str]],
    labels: list[str],
    kind: str = "trained",
    seed: int = 0,
    steps: int = 150,
    lr: float = 1e-3,
) -> Path:
    """A tiny mean-pooling BERT classifier saved with its tokenizer; `kind` = trained | constant | wrong | random."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 32-wide model: one thread is fastest and does not fight the other tests
    try:
        return _build_classifier(out, texts, train, labels, kind, seed, steps, lr)
    finally:
        torch.set_num_threads(threads)


def _build_classifier(
    out: Path,
    texts: list[str],
    train: list[dict[str, str]],
    labels: list[str],
    kind: str,
    seed: int,
    steps: int,
    lr: float,
) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig

    from stages.serving.meanpool import MeanPoolConfig, MeanPoolForSequenceClassification

    build_tokenizer(texts, out)
    tok = AutoTokenizer.from_pretrained(out)
    torch.manual_seed(seed)
    # the pipeline's default head (finetune.pooling: mean), so registering and serving load its own code
    cfg = MeanPoolConfig(
        encoder=BertConfig(vocab_size=len(tok), **TINY_BERT_SHAPE).to_dict(),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
        pad_token_id=tok.pad_token_id,
    )
    model = MeanPoolForSequenceClassification(cfg)
    if kind in ("trained", "wrong"):
        opt = torch.optim.AdamW(model.parameters(), lr=lr)
        model.train()
        y_all = torch.tensor([labels.index(r["label"]) for r in train])
        enc = tok(
            [r["text"] for r in train], padding=True, truncation=True, max_length=64, return_tensors="pt"
        )
        g = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            idx = torch.randperm(len(train), generator=g)[:32]
            loss = model(**{k: v[idx] for k, v in enc.items()}, labels=y_all[idx]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
    with torch.no_grad():
        if kind == "constant":
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor([5.0] + [0.0] * (len(labels) - 1)))
        elif kind == "wrong":
            model.classifier.weight.copy_(model.classifier.weight.roll(1, dims=0))
            model.classifier.bias.copy_(model.classifier.bias.roll(1, dims=0))
    model.save_pretrained(out)
    (out / "ftpipe_params.json").write_text(json.dumps({"kind": kind, "seed": seed}))
    return out


def predict(model_dir: Path, texts: list[str]) -> tuple[list[int], list[list[float]]]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True).eval()
    with torch.no_grad():
        enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        probs = torch.softmax(model(**enc).logits, -1)
    return probs.argmax(-1).tolist(), probs.tolist()


def write_eval_outputs(
    model_dir: Path, splits: Path, labels_json: Path, reports: Path, baseline_f1: float = 0.5
) -> dict[str, Path]:
    """What evaluate writes for `model_dir`: metrics.json and predictions.csv (plus a history file)."""
    import pandas as pd
    from datasets import load_from_disk
    from sklearn.metrics import accuracy_score, f1_score

    test = load_from_disk(str(splits))["test"]
    names = [json.loads(labels_json.read_text())[str(i)] for i in range(len(test.features["label"].names))]
    pred, probs = predict(model_dir, list(test["text"]))
    y = list(test["label"])
    df = pd.DataFrame(
        {
            "id": list(test["id"]),
            "label": [names[i] for i in y],
            "pred": [names[i] for i in pred],
            "score": [max(p) for p in probs],
            "correct": [int(a == b) for a, b in zip(y, pred, strict=True)],
            # a baseline right on every other row: accuracy 0.5, as baseline_f1's default says
            "baseline_pred": [names[i if k % 2 == 0 else (i + 1) % len(names)] for k, i in enumerate(y)],
            "baseline_correct": [int(k % 2 == 0) for k in range(len(y))],
        }
    )
    for j, n in enumerate(names):
        df[f"prob_{n}"] = [p[j] for p in probs]
    reports.mkdir(parents=True, exist_ok=True)
    df.to_csv(reports / "predictions.csv", index=False)
    model: dict[str, Any] = {
        "accuracy": accuracy_score(y, pred),
        "macro_f1": f1_score(y, pred, average="macro", zero_division=0),
        "weighted_f1": f1_score(y, pred, average="weighted", zero_division=0),
        "ece": 0.1,
        "per_class": {n: {"f1": 0.5, "support": 10} for n in names},
    }
    baseline = {"accuracy": baseline_f1, "macro_f1": baseline_f1, "weighted_f1": baseline_f1, "ece": 0.2}
    metrics = {
        "primary_metric": "macro_f1",
        "model": model,
        "baseline": baseline,
        "delta": {k: model[k] - baseline[k] for k in baseline},
        "inference": {"examples_per_s": 100.0, "device": "cpu"},
        "test_rows": len(y),
    }
    (reports / "metrics.json").write_text(json.dumps(metrics))
    (reports / "finetune_history.json").write_text(
        json.dumps(
            [
                {"loss": 1.0, "step": 1, "epoch": 0.5},
                {"loss": 0.5, "step": 2, "epoch": 1.0},
                {"eval_loss": 0.6, "eval_macro_f1": 0.8, "step": 2, "epoch": 1.0},
            ]
        )
    )
    return {
        "metrics": reports / "metrics.json",
        "predictions": reports / "predictions.csv",
        "history": reports / "finetune_history.json",
    }


PROFILE_TOKEN_BINS = [0, 4, 8, 16, 32, 64, 128, 256, 1_000_000_000]
PROFILE_CHAR_BINS = [0, 16, 32, 64, 128, 256, 512, 1024, 1_000_000_000]


def make_profile(rows: dict[str, list[dict[str, str]]], sample_size: int = 300) -> dict[str, Any]:
    """The validate stage's compact profile (format 1) of `{split: rows}` (id, group, label, text).

    Token lengths are whitespace words here; the sample is the `sample_size` train/validation rows whose
    id hashes lowest, texts cut to 1000 characters, as validate does.
    """
    import hashlib

    import numpy as np

    classes = sorted({r["label"] for part in rows.values() for r in part})

    def hist(values: list[int], edges: list[int]) -> list[int]:
        return [int(x) for x in np.histogram(np.clip(values, 0, edges[-1] - 1), bins=edges)[0]]

    pool = [{**r, "split": s} for s in ("train", "validation") for r in rows.get(s, [])]
    pool.sort(key=lambda r: (hashlib.blake2b(r["id"].encode(), digest_size=8).hexdigest(), r["id"]))
    return {
        "format": 1,
        "classes": classes,
        "rows": {s: len(part) for s, part in rows.items()},
        "class_counts": {
            s: {c: sum(r["label"] == c for r in part) for c in classes} for s, part in rows.items()
        },
        "length_bins": {"chars": PROFILE_CHAR_BINS, "tokens": PROFILE_TOKEN_BINS},
        "length_hist": {
            "chars": {s: hist([len(r["text"]) for r in part], PROFILE_CHAR_BINS) for s, part in rows.items()},
            "tokens": {
                s: hist([len(r["text"].split()) for r in part], PROFILE_TOKEN_BINS)
                for s, part in rows.items()
            },
        },
        "sample": [
            {k: r[k] for k in ("id", "group", "split", "label")} | {"text": r["text"][:1000]}
            for r in pool[:sample_size]
        ],
    }


class Workspace:
    """One fixture corpus and split, and a factory of candidate models with their evaluate outputs.

    `split_seed` is a `label.seed`: the same rows, split by the label stage's own stable split under that
    seed (instead of the fixed 4:1:1 split), so most rows land on another side.
    """

    def __init__(self, root: Path, n_per_class: int = 60, split_seed: int | None = None) -> None:
        self.root = root
        self.rows = make_corpus(n_per_class=n_per_class, seed=1)
        self.texts = [r["text"] for r in self.rows]
        self.labels = sorted({r["label"] for r in self.rows})
        tok_dir = build_tokenizer(self.texts, root / "tok")
        self.splits, self.labels_json = build_splits(tok_dir, self.rows, root / "data", label_seed=split_seed)
        from datasets import load_from_disk

        train = load_from_disk(str(self.splits))["train"]
        self.train = [
            {"text": t, "label": self.labels[y]}
            for t, y in zip(list(train["text"]), list(train["label"]), strict=True)
        ]

    def split_rows(self) -> dict[str, list[dict[str, str]]]:
        """{split: rows (id, group, label name, text)} of this workspace's splits."""
        from datasets import load_from_disk

        ds = load_from_disk(str(self.splits))
        return {
            name: [
                {"id": i, "group": g, "label": self.labels[y], "text": t}
                for i, g, y, t in zip(part["id"], part["group"], part["label"], part["text"], strict=True)
            ]
            for name, part in ds.items()
        }

    def profile(self) -> DataProfile:
        """The compact data profile of this workspace's splits (what validate would write)."""
        return DataProfile.model_validate(make_profile(self.split_rows()))

    def candidate(self, tag: str, kind: str, seed: int = 0) -> dict[str, Path]:
        """Build model `tag` of `kind` and its evaluate outputs; returns the paths register needs."""
        model_dir = self.root / tag / "model"
        if not model_dir.exists():
            build_classifier(model_dir, self.texts, self.train, self.labels, kind, seed)
            write_eval_outputs(model_dir, self.splits, self.labels_json, self.root / tag / "reports")
        reports = self.root / tag / "reports"
        return {
            "model": model_dir,
            "metrics": reports / "metrics.json",
            "predictions": reports / "predictions.csv",
            "history": reports / "finetune_history.json",
            "splits": self.splits,
            "labels": self.labels_json,
        }
