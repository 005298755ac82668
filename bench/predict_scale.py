"""predict_scale: the real `ftpipe predict` on a generated file of N short texts: rows/s, start-up, peak RSS.

    .venv/bin/python -m bench.predict_scale --rows 1000000            # the repository's champion
    .venv/bin/python -m bench.predict_scale --rows 2000 --model-uri models:/NAME/3 --format parquet

It writes an N-row CSV of short texts (5 to 30 words each, a fixed seed) into a scratch folder, runs
`python -m flows.cli predict` on it as a child process (the command as a user runs it: model download
and check, streaming, parts, the join), and reports what the child took: wall seconds, the seconds
before its first batch (process start to model ready, from the command's summary), rows/s while
predicting, and its peak RSS (`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`, the largest resident
set the child reached). The model is `--model-uri`, else `models:/<register.model_name>@champion` of
the store the register stage uses (`MLFLOW_TRACKING_URI`, else the repository's `mlflow.db`). Peak RSS
should not grow with N: the input is read in chunks and the parts are joined one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
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

    from flows.predict_model import register_params
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
    cmd = [sys.executable, "-m", "flows.cli", "predict", str(inp), str(out), "--model-uri", uri]
    cmd += ["--batch-size", str(batch_size), "--no-progress", *extra]
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
        "extra", nargs="*", help="more `ftpipe predict` options after --, e.g. -- --quantize int8"
    )
    args = ap.parse_args(argv)
    uri = args.model_uri or champion_uri()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        inp, out = Path(tmp) / "texts.csv", Path(tmp) / f"predictions.{args.format}"
        t = time.perf_counter()
        size = write_texts(inp, args.rows)
        gen_s = time.perf_counter() - t
        result = run_predict(inp, out, uri, args.batch_size, args.extra)
        result["output_mb"] = round(out.stat().st_size / 1e6, 1)
    result = {
        "rows": args.rows,
        "input_mb": round(size / 1e6, 1),
        "generate_s": round(gen_s, 1),
        "model_uri": uri,
        "rows_per_s": round(args.rows / result["predict_s"], 1) if result["predict_s"] else None,
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
