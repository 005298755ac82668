"""`ftpipe serve` under load while its alias moves twice, against a fresh `ftpipe predict` process per request.

    .venv/bin/python -m bench.serve_load                       # the workspace's registry, register.model_name
    .venv/bin/python -m bench.serve_load --tiny                # a tiny model registered in a temporary store
    .venv/bin/python -m bench.serve_load --seconds 20 --max-requests 2000 --users 4

The server follows an alias of its own (`bench`, never champion): it is set on the newest version, moved
to the previous one a third of the way into each load run and back at two thirds (with a single version,
the tiny store gets a copy of it). locust runs headless against 127.0.0.1 only, for 1 text and for 32 texts
per request, each run bounded by `--seconds` and by `--max-requests` per user, and stops by itself. Then
a fresh `ftpipe predict` process is timed on a file of 1 and of 32 texts (`--predict-runs` times: the
median and the slowest). Prints a table and writes bench/serve_load.json: p50/p95 latency, rows/s, failed
requests and the versions that answered.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"  # traffic goes nowhere else
ALIAS = "bench"
LOCUSTFILE = """
import json, os
from locust import HttpUser, constant, task
from locust.exception import StopUser

TEXTS = json.loads(open(os.environ["BENCH_TEXTS"]).read())  # a file: news texts overflow an environment variable
ROWS, MAX = int(os.environ["BENCH_ROWS"]), int(os.environ["BENCH_MAX_REQUESTS"])
LOG = os.environ["BENCH_VERSIONS"]


class Client(HttpUser):
    wait_time = constant(0)

    def on_start(self):
        self.sent = 0

    @task
    def invoke(self):
        if self.sent >= MAX:
            raise StopUser()
        self.sent += 1
        rows = [{"text": TEXTS[(self.sent * 7 + k) % len(TEXTS)]} for k in range(ROWS)]
        with self.client.post("/invocations", json={"dataframe_records": rows}, catch_response=True) as r:
            version = r.headers.get("X-Model-Version")
            if r.status_code != 200 or not version:
                r.failure(f"{r.status_code}: {r.text[:200]}")
            else:
                with open(LOG, "a") as f:
                    f.write(version + "\\n")
"""


def _env(uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _tiny_store(work: Path) -> tuple[str, str, list[str]]:
    """A tiny classifier registered in a temporary SQLite store, and a copy of it as a second version."""
    from mlflow import MlflowClient

    from tests.flows.commands.serve.support import copy_version, register_versions

    uri = f"sqlite:///{work / 'mlflow.db'}"
    ws = register_versions(work, uri, "bench-tiny", 1)
    copy_version(MlflowClient(uri, uri), work, "bench-tiny", "1")
    return uri, "bench-tiny", ws.texts


def _texts() -> list[str]:
    """Test texts of the default corpus when `make run` made them, else a few fixed sentences."""
    try:
        from datasets import load_from_disk

        texts = list(load_from_disk("data/processed/splits")["test"]["text"][:200])
        if texts:
            return [str(t) for t in texts]
    except Exception:  # noqa: BLE001 - no processed data in this workspace
        pass
    from stages.registry.smoke import FALLBACK_TEXTS

    return list(FALLBACK_TEXTS)


def _locust(
    url: str, texts: list[str], rows: int, users: int, seconds: int, max_requests: int, work: Path
) -> dict[str, Any]:
    locustfile = work / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    versions = work / f"versions-{rows}.txt"
    versions.write_text("")
    prefix = work / f"locust-{rows}"
    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps(texts))
    env = {**os.environ, "BENCH_TEXTS": str(texts_file), "BENCH_ROWS": str(rows)}
    env |= {"BENCH_MAX_REQUESTS": str(max_requests), "BENCH_VERSIONS": str(versions)}
    cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", url]
    cmd += [
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--csv",
        str(prefix),
        "--stop-timeout",
        "10",
    ]
    cmd += ["--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    subprocess.run(cmd, env=env, check=True, timeout=seconds + 120, capture_output=True)
    with open(f"{prefix}_stats.csv") as f:
        (total,) = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    answered = [v for v in versions.read_text().split() if v]
    return {
        "texts_per_request": rows,
        "users": users,
        "requests": int(total["Request Count"]),
        "failed": int(total["Failure Count"]),
        "p50_ms": float(total["50%"]),
        "p95_ms": float(total["95%"]),
        "rows_per_s": round(float(total["Requests/s"]) * rows, 1),
        "answered_by": {v: answered.count(v) for v in sorted(set(answered))},
    }


def _predict_process(
    uri: str, name: str, texts: list[str], rows: int, runs: int, work: Path
) -> dict[str, Any]:
    """A fresh `ftpipe predict` process on a file of `rows` texts, `runs` times: wall seconds."""
    src, out = work / f"in-{rows}.csv", work / f"out-{rows}.csv"
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows([i, texts[i % len(texts)]] for i in range(rows))
    walls = []
    for _ in range(runs):
        out.unlink(missing_ok=True)
        t = time.perf_counter()
        cmd = [sys.executable, "-m", "flows.commands.cli", "predict", str(src), str(out), "--no-progress"]
        subprocess.run(
            [*cmd, "--model-uri", f"models:/{name}@{ALIAS}"], env=_env(uri), check=True, capture_output=True
        )
        walls.append(time.perf_counter() - t)
    return {
        "texts_per_request": rows,
        "runs": runs,
        "p50_ms": round(statistics.median(walls) * 1000),
        "max_ms": round(max(walls) * 1000),
        "rows_per_s": round(rows / statistics.median(walls), 2),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--tiny", action="store_true", help="a tiny model in a temporary store (no registry needed)"
    )
    ap.add_argument("--name", help="registered model (default: register.model_name)")
    ap.add_argument("--seconds", type=int, default=30, help="each load run's length")
    ap.add_argument("--max-requests", type=int, default=5000, help="requests per locust user and run")
    ap.add_argument("--users", type=int, default=4, help="concurrent locust users")
    ap.add_argument("--predict-runs", type=int, default=3)
    ap.add_argument(
        "--precision", choices=("fp32", "auto"), help="serve.precision (default: serve's own, auto)"
    )
    ap.add_argument(
        "--quantize",
        choices=("none", "int8"),
        help="serve.quantize (int8 also widens serve.smoke_tolerance to 0.5: its probabilities move by up to 0.27)",
    )
    ap.add_argument(
        "--max-chars", type=int, help="cut each text to its first N characters (e.g. 500: one window)"
    )
    ap.add_argument("--texts-per-request", type=int, nargs="+", default=[1, 32], help="one load run each")
    ap.add_argument("--out", default="bench/serve_load.json")
    args = ap.parse_args(argv)

    from mlflow import MlflowClient

    from flows.commands.predict.model import register_params
    from stages.registry.tracking import tracking_uri
    from tests.flows.commands.serve.support import request, serve

    with tempfile.TemporaryDirectory(prefix="ftpipe-serve-load-") as tmp:
        work = Path(tmp)
        if args.tiny:
            uri, name, texts = _tiny_store(work)
        else:
            uri, name, texts = tracking_uri(), args.name or register_params().model_name, _texts()
        texts = [t[: args.max_chars] for t in texts] if args.max_chars else texts
        client = MlflowClient(uri, uri)
        versions = sorted(
            (int(v.version) for v in client.search_model_versions(f"name='{name}'")), reverse=True
        )
        if len(versions) < 2:
            sys.exit(f"{name} has {len(versions)} version(s) in {uri}; the alias needs two to move between")
        new, old = str(versions[0]), str(versions[1])
        client.set_registered_model_alias(name, ALIAS, new)
        settings = {"poll_seconds": 1.0, "log_dir": str(work / "log"), "max_rows": 64, "max_in_flight": 32}
        settings |= {"precision": args.precision} if args.precision else {}
        settings |= {"quantize": args.quantize} if args.quantize else {}
        settings |= {"smoke_tolerance": 0.5} if args.quantize == "int8" else {}
        results: dict[str, Any] = {"model": name, "tiny": args.tiny, "served": [], "predict_process": []}
        with serve(work / "serve", uri, name, settings, "--alias", ALIAS) as srv:
            assert srv.url.startswith(f"http://{HOST}:")
            results["load_seconds"] = srv.version()["load_seconds"]
            results["computes_in"] = srv.version().get("computes_in")
            for rows in args.texts_per_request:
                request(f"{srv.url}/invocations", {"instances": texts[:rows]})  # warm

                def move(at: float, to: str) -> None:
                    time.sleep(at)
                    client.set_registered_model_alias(name, ALIAS, to)

                moves = [
                    threading.Thread(target=move, args=(args.seconds * f, v))
                    for f, v in ((1 / 3, old), (2 / 3, new))
                ]
                for m in moves:
                    m.start()
                run = _locust(srv.url, texts, rows, args.users, args.seconds, args.max_requests, work)
                for m in moves:
                    m.join()
                run["swaps_so_far"] = srv.version()["swaps"]
                results["served"].append(run)
            results["server_rss_mib"] = _rss_mib(srv.proc.pid)
        for rows in args.texts_per_request if args.predict_runs else ():
            results["predict_process"].append(
                _predict_process(uri, name, texts, rows, args.predict_runs, work)
            )
        client.delete_registered_model_alias(name, ALIAS)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    for r in results["served"]:
        print(
            f"served  {r['texts_per_request']:>2} text(s)/request: p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, "
            f"{r['rows_per_s']} rows/s, {r['requests']} requests, {r['failed']} failed, answered by {r['answered_by']}"
        )
    for r in results["predict_process"]:
        print(
            f"predict {r['texts_per_request']:>2} text(s)/process: median {r['p50_ms']} ms, slowest {r['max_ms']} ms, "
            f"{r['rows_per_s']} rows/s"
        )
    print(
        f"server RSS {results['server_rss_mib']} MiB, computing in {results['computes_in']}; a version loads in "
        f"{results['load_seconds']} s; wrote {args.out}"
    )


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


if __name__ == "__main__":
    main()
