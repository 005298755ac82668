"""predict_scale: the real `ftpipe predict` on a generated file of N short texts: rows/s, start-up, peak RSS.

    .venv/bin/python -m bench.predict_scale --rows 1000000            # the repository's champion
    .venv/bin/python -m bench.predict_scale --rows 2000 --model-uri models:/NAME/3 --format parquet
    .venv/bin/python -m bench.predict_scale --rows 1000000 --time-limit 300 --out bench/predict_scale.json

It writes an N-row CSV of short texts (5 to 30 words each, a fixed seed) into a scratch folder, runs
`python -m flows.commands.cli predict` on it as a child process (the command as a user runs it: model download
and check, streaming, parts, the join), and reports what the child took: wall seconds, the seconds
before its first batch (process start to model ready, from the command's summary), rows/s while
predicting, and its peak RSS (`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`, the largest resident
set the child reached). The model is `--model-uri`, else `models:/<register.model_name>@champion` of
the store the register stage uses (`MLFLOW_TRACKING_URI`, else the repository's `mlflow.db`). Peak RSS
should not grow with N: the input is read in chunks and the parts are joined one at a time.

`--time-limit SECONDS` stops the command at the limit as a user would (SIGTERM, SIGKILL 20 s later) and
reports how far it got from the parts manifest it writes (flows/commands/predict/parts.py): the rows saved, the
rows/s over the predicting time (the parts folder appears once the model is loaded; the manifest's last
write is the last saved part), its peak RSS (VmHWM) and the hours all N rows would take at that rate.
`--resume-check` then runs the same command again, stops it once it saved a part past the first run's
(or at the limit), and reports the rows it started from: the first run's rows, not 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flows.commands.predict.parts import MANIFEST

ROOT = Path(__file__).resolve().parents[1]
KILL_AFTER_S = 20.0  # after SIGTERM, before SIGKILL
POLL_S = 0.2
WORDS = (
    "market shares profit bank economy company prices investors growth trade match goal team player coach "
    "league season win cup score software computer phone internet chip data users network digital device "
    "film music award star show album band actor director festival minister election party vote government "
    "policy labour tory campaign the a of and to in for on with by said year new after over more than"
).split()


def write_texts(path: Path, rows: int, seed: int = 0) -> int:
    """An `id,text` CSV of `rows` texts of 5 to 30 words, written as it is generated; its size in bytes."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("id,text\n")
        for i in range(rows):
            fh.write(f"r{i},{' '.join(rng.choices(WORDS, k=rng.randint(5, 30)))}\n")
    return path.stat().st_size


def champion_uri() -> str:
    """`models:/<register.model_name>@champion` if the store has that alias; else exit asking for one."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from flows.commands.predict.model import register_params
    from stages.registry.tracking import tracking_uri

    name = register_params(ROOT / "params.yaml").model_name
    try:
        MlflowClient(tracking_uri()).get_model_version_by_alias(name, "champion")
    except MlflowException:
        sys.exit(
            f"predict_scale: no champion of `{name}` in {tracking_uri()}; pass --model-uri models:/NAME/VERSION"
        )
    return f"models:/{name}@champion"


def run_predict(inp: Path, out: Path, uri: str, batch_size: int, extra: list[str]) -> dict[str, Any]:
    """The command as a child process; its wall time, peak RSS and the figures its summary prints."""
    cmd = predict_cmd(inp, out, uri, batch_size, extra)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"predict_scale: `{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    found = re.search(
        r"Model ready after ([\d.]+) s; predicted in ([\d.]+) s \(first batch ([\d.-]+) s\)", proc.stdout
    )
    if found is None:
        sys.exit(f"predict_scale: no timing line in the command's output:\n{proc.stdout[-2000:]}")
    load_s, predict_s = float(found.group(1)), float(found.group(2))
    return {
        "wall_s": round(wall, 2),
        "model_ready_s": load_s,  # from the command's start (its imports excluded) to the model loaded
        "overhead_s": round(wall - predict_s, 2),  # start-up (imports, model load and check) and exit
        "predict_s": predict_s,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "summary": proc.stdout.strip().splitlines()[0],
    }


def predict_cmd(inp: Path, out: Path, uri: str, batch_size: int, extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "flows.commands.cli", "predict", str(inp), str(out), "--model-uri", uri]
    return cmd + ["--batch-size", str(batch_size), "--no-progress", *extra]


def parts_done(out: Path) -> tuple[int, float | None]:
    """Rows in the parts the command's manifest lists, and the manifest's last write (epoch s)."""
    manifest = out.with_name(f".{out.name}.parts") / MANIFEST
    try:
        parts = json.loads(manifest.read_text(encoding="utf-8")).get("parts", [])
        return sum(int(p["rows"]) for p in parts), manifest.stat().st_mtime
    except (OSError, ValueError):
        return 0, None


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM) so far, in MB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
    return round(int(found.group(1)) / 1024, 1) if found else None


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, then SIGKILL after KILL_AFTER_S: how it ended."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(KILL_AFTER_S)
        return "SIGTERM"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "SIGKILL"


def run_limited(cmd: list[str], out: Path, limit_s: float, stop_past: int | None = None) -> dict[str, Any]:
    """The command as a child, stopped at `limit_s` (or once its parts hold more than `stop_past` rows)."""
    folder = out.with_name(f".{out.name}.parts")
    existed = folder.exists()
    t0, started = time.time(), None
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, ended = None, "finished"
    while proc.poll() is None:
        peak = peak_rss_mb(proc.pid) or peak
        if started is None and (existed or folder.exists()):
            started = time.time()
        if stop_past is not None and parts_done(out)[0] > stop_past:
            ended = stop(proc)
        elif time.time() - t0 >= limit_s:
            ended = stop(proc)
        else:
            time.sleep(POLL_S)
    stdout, stderr = proc.communicate()
    rows, last_write = parts_done(out)
    if ended == "finished" and proc.returncode != 0:
        sys.exit(f"predict_scale: `{' '.join(cmd)}` failed ({proc.returncode}):\n{stderr[-3000:]}")
    resumed = re.search(r"resumed after (\d+) rows", stdout)
    return {
        "ended": ended,
        "returncode": proc.returncode,
        "wall_s": round(time.time() - t0, 2),
        "model_ready_s": None if started is None or existed else round(started - t0, 2),
        "rows_saved": rows,
        # a resumed run's folder was there from its start: no predicting time of its own to tell
        "predicting_s": None
        if started is None or last_write is None or existed
        else round(last_write - started, 2),
        "started_from_rows": int(resumed.group(1)) if resumed else 0,
        "peak_rss_mb": peak,
        "stdout_last": (stdout.strip().splitlines() or [""])[-1],
        "stderr_last": (stderr.strip().splitlines() or [""])[-1],
    }


def time_limited(args: argparse.Namespace, inp: Path, out: Path, uri: str) -> dict[str, Any]:
    """`--time-limit`: how far the command got, its rate and what all rows would take; `--resume-check`."""
    cmd = predict_cmd(inp, out, uri, args.batch_size, args.extra)
    first = run_limited(cmd, out, args.time_limit)
    if (
        first["ended"] == "finished"
    ):  # done inside the limit: every row is in the output, its summary says when
        first["rows_saved"] = args.rows
        said = re.search(r"Model ready after ([\d.]+) s; predicted in ([\d.]+) s", first["stdout_last"])
        if said:
            first["model_ready_s"], first["predicting_s"] = float(said.group(1)), float(said.group(2))
    rate = first["rows_saved"] / first["predicting_s"] if first["predicting_s"] else None
    result: dict[str, Any] = {
        "time_limit_s": args.time_limit,
        "first_run": first,
        "rows_per_s": None if rate is None else round(rate, 1),
        "extrapolated_h": None
        if rate is None
        else round(((first["model_ready_s"] or 0.0) + args.rows / rate) / 3600, 2),
    }
    if args.resume_check and first["ended"] != "finished":
        again = run_limited(cmd, out, args.time_limit, stop_past=first["rows_saved"])
        again["resumed_as_expected"] = again["started_from_rows"] == first["rows_saved"] > 0
        result["resume_run"] = again
    return result


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?"
    )
    flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in text]
    return f"{model} ({', '.join(flags) or 'no avx2'}), {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows to generate (default 1,000,000)")
    ap.add_argument("--model-uri", help="a registered model (default: the champion of register.model_name)")
    ap.add_argument("--format", choices=("csv", "jsonl", "parquet"), default="parquet", help="the output's")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one, removed)")
    ap.add_argument("--out", type=Path, help="also write the JSON result here")
    ap.add_argument(
        "--time-limit",
        type=float,
        help="stop the command after SECONDS (SIGTERM, SIGKILL 20 s later) and report the rows it saved, "
        "its rows/s and the hours all rows would take",
    )
    ap.add_argument(
        "--resume-check",
        action="store_true",
        help="with --time-limit: run the command again and report the rows it resumed from",
    )
    ap.add_argument(
        "extra", nargs="*", help="more `ftpipe predict` options after --, e.g. -- --quantize int8"
    )
    args = ap.parse_args(argv)
    if args.resume_check and args.time_limit is None:
        ap.error("--resume-check needs --time-limit")
    uri = args.model_uri or champion_uri()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        inp, out = Path(tmp) / "texts.csv", Path(tmp) / f"predictions.{args.format}"
        t = time.perf_counter()
        size = write_texts(inp, args.rows)
        gen_s = time.perf_counter() - t
        if args.time_limit is not None:
            result = time_limited(args, inp, out, uri)
        else:
            result = run_predict(inp, out, uri, args.batch_size, args.extra)
            result["output_mb"] = round(out.stat().st_size / 1e6, 1)
            result["rows_per_s"] = round(args.rows / result["predict_s"], 1) if result["predict_s"] else None
    result = {
        "rows": args.rows,
        "input_mb": round(size / 1e6, 1),
        "generate_s": round(gen_s, 1),
        "model_uri": uri,
        **result,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "cpu": cpu_flags(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
