"""first_hour: what a new user waits for in their first hour, command by command, wall clock.

    .venv/bin/python -m bench.first_hour                     # the checkout, after `make run`
    .venv/bin/python -m bench.first_hour --repeat 1 --skip-predict --root /tmp/some-repo   # a quick look

- `check`: `ftpipe check` end to end (a fresh process each time, as a user runs it);
- `predict`: `ftpipe predict` on 200 rows of data/interim/clean.parquet, end to end, with the command's
  own "Model ready after X s ... first batch Y s" figures (needs a registered champion);
- `noop_run`: `ftpipe run` on an up-to-date workspace (what a no-op `make run` does), and where its time
  goes: the sum of the stages' own seconds from its per-stage lines, and, each measured alone, a Python
  start that imports the flow's modules and Prefect, one `dvc status`, and a trivial Prefect flow (the
  temporary server's start and stop). `overhead_s` = wall - stage seconds.

Each figure is the median of `--repeat` runs (after one warm-up run of each command). Record the CPU
(`lscpu`, the flags line) and how busy the machine was beside the figures: on a shared 2-core machine
they mean little. Results: printed as JSON, and written to `--out` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"^(\S+)\s+(ran|skipped|restored|failed)\s+([\d.]+) s")
# `ftpipe predict`'s own closing line (its wording has varied: match the two figures separately)
MODEL_READY = re.compile(r"Model ready after ([\d.]+) s")
FIRST_BATCH = re.compile(r"first batch(?: done)? ([\d.]+) s")


def env() -> dict[str, str]:
    """The user's environment with the venv's bin first on PATH and telemetry off."""
    out = dict(os.environ)
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out.get('PATH', '')}"
    out.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    out.setdefault("DO_NOT_TRACK", "1")
    out.setdefault("DVC_NO_ANALYTICS", "1")
    return out


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds and stdout+stderr of one command; a failing command stops the benchmark."""
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return seconds, proc.stdout


def median_of(cmd: list[str], cwd: Path, repeat: int) -> tuple[float, list[float], str]:
    timed(cmd, cwd)  # warm-up: the file cache, Python's bytecode cache, Prefect's database
    runs = [timed(cmd, cwd) for _ in range(repeat)]
    return statistics.median(s for s, _ in runs), [round(s, 2) for s, _ in runs], runs[-1][1]


FTPIPE = [sys.executable, "-m", "flows.commands.cli"]
IMPORTS = "import flows.commands.cli, flows.retrain, flows.runner, prefect, dvc.repo"
STATUS = "from dvc.repo import Repo\nwith Repo({root!r}) as r: r.status()"
TRIVIAL_FLOW = "from prefect import flow\n@flow\ndef f():\n    return 1\nf()"


def bench_check(root: Path, repeat: int) -> dict[str, Any]:
    wall, runs, _ = median_of([*FTPIPE, "check", "--root", str(root)], REPO, repeat)
    return {"wall_s": round(wall, 2), "runs_s": runs}


def bench_predict(root: Path, rows: int, repeat: int) -> dict[str, Any]:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    table = pq.read_table(root / "data" / "interim" / "clean.parquet", columns=["id", "text"]).slice(0, rows)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.csv"
        pcsv.write_csv(table, src)
        cmd = [*FTPIPE, "predict", str(src), str(Path(tmp) / "out.csv"), "--no-resume", "--no-progress"]
        wall, runs, out = median_of(cmd, root, repeat)
    ready, first = MODEL_READY.search(out), FIRST_BATCH.search(out)
    return {
        "rows": table.num_rows,
        "wall_s": round(wall, 2),
        "runs_s": runs,
        "model_ready_s": float(ready.group(1)) if ready else None,  # the last run's own figures
        "first_batch_s": float(first.group(1)) if first else None,
        "model_line": next((ln for ln in out.splitlines() if "Model ready after" in ln), None),
    }


def stale(root: Path) -> list[str]:
    """The stages `dvc status` says would run (always_changed ones aside): the run must be a no-op."""
    _, out = timed([sys.executable, "-m", "dvc", "status", "--json"], root)
    status = json.loads(out.strip().splitlines()[-1] or "{}")
    return [name for name, why in status.items() if why != ["always changed"]]


def bench_noop_run(root: Path, repeat: int) -> dict[str, Any]:
    if todo := stale(root):
        sys.exit(
            f"{root} is not up to date ({', '.join(todo)} would run): run `make run` first, or --skip-run."
        )
    wall, runs, out = median_of([*FTPIPE, "run", "--root", str(root)], REPO, repeat)
    stages = {
        m.group(1): (m.group(2), float(m.group(3))) for m in map(STAGE_LINE.match, out.splitlines()) if m
    }
    if any(status != "skipped" for status, _ in stages.values()) and "register" not in stages:
        print("warning: the workspace was not up to date; this is not a no-op run", file=sys.stderr)
    stage_s = sum(s for _, s in stages.values())
    parts = {
        "imports_s": median_of([sys.executable, "-c", IMPORTS], REPO, repeat)[0],
        "dvc_status_s": median_of([sys.executable, "-c", STATUS.format(root=str(root))], REPO, repeat)[0],
        "prefect_trivial_flow_s": median_of([sys.executable, "-c", TRIVIAL_FLOW], REPO, repeat)[0],
    }
    return {
        "wall_s": round(wall, 2),
        "runs_s": runs,
        "stages": {k: {"status": v[0], "seconds": v[1]} for k, v in stages.items()},
        "stage_s": round(stage_s, 2),
        "overhead_s": round(wall - stage_s, 2),
        "alone": {k: round(v, 2) for k, v in parts.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=REPO, help="the workspace (default: this checkout)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per command (median reported)")
    ap.add_argument("--rows", type=int, default=200, help="rows for `ftpipe predict`")
    ap.add_argument("--skip-predict", action="store_true", help="no predict (no registered champion)")
    ap.add_argument("--skip-run", action="store_true", help="no no-op `ftpipe run`")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args()
    root = args.root.resolve()
    result: dict[str, Any] = {"root": str(root), "repeat": args.repeat, "cpus": os.cpu_count()}
    result["check"] = bench_check(root, args.repeat)
    if not args.skip_predict:
        result["predict"] = bench_predict(root, args.rows, args.repeat)
    if not args.skip_run:
        result["noop_run"] = bench_noop_run(root, args.repeat)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
