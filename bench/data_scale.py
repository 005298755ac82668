"""The data stages at scale: wall seconds and peak RSS of ingest, clean, tokenize, label and validate.

    .venv/bin/python -m bench.data_scale                          # 1,000,000 rows and 117,647 (N / 8.5)
    .venv/bin/python -m bench.data_scale --rows 20000 100000 200000 --extrapolate 1000000

It writes a CSV of N short synthetic texts (5 classes, 5-40 words, about 3% exact copies of an earlier
row, about 0.5% bad rows: a ragged row, an empty label, a text too short for `clean.min_words`) into a
temporary workspace, points a copy of params.yaml's `ingest.source` at it, and runs each stage's entry
point one after the other as `python -m stages.<name> --params <copy> <its dvc.yaml paths under the
workspace>` (the command dvc.yaml runs, with the same arguments). Each stage's wall seconds and peak
RSS (`os.wait4`'s `ru_maxrss` of that one process) are reported per size, with the ratio of the
ingest..label time at the largest size to that at the reference size (`--ref-rows`, default N / 8.5,
117,647 for N = 1M) and, from two or more sizes, a least-squares line of each stage's peak RSS in N,
evaluated at `--extrapolate`. Targets: ingest..label at 1M in at most 10x the reference time, peak RSS
of every stage at most 4 GiB. Results go to `bench/data_scale.json` (git-ignored) and print as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from stages.config.paths import path_argv

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "clean", "tokenize", "label", "validate")
TIMED = ("ingest", "clean", "tokenize", "label")  # the stages the 10x target covers
RSS_TARGET_MIB = 4096
TIME_RATIO_TARGET = 10.0
CLASSES = ("business", "entertainment", "politics", "sport", "tech")
SHARED_WORDS = (
    "the a of to and in on for with as at by from that this it was is be will said new year people "
    "after over more than could would about its their which one two first last week month time"
).split()


def class_words(rng: random.Random, n: int = 400) -> dict[str, list[str]]:
    """Each class its own vocabulary of made-up words, so the classes are separable as real ones are."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = {}
    for c in CLASSES:
        out[c] = ["".join(rng.choices(letters, k=rng.randint(3, 10))) for _ in range(n)]
    return out


def make_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` (text, label) rows: mostly clean short texts, some exact copies, a few bad rows."""
    rng = random.Random(seed)
    vocab = class_words(rng)
    rows: list[tuple[str, str]] = []
    for _ in range(n):
        roll = rng.random()
        if rows and roll < 0.03:
            rows.append(rows[rng.randrange(len(rows))])  # an exact duplicate
            continue
        label = rng.choice(CLASSES)
        if roll < 0.033:
            rows.append(("too short", label))  # clean: fewer than min_words
        elif roll < 0.035:
            rows.append(("a text whose label is missing here", ""))  # label: quarantined (empty)
        else:
            words = [rng.choice(vocab[label] if rng.random() < 0.5 else SHARED_WORDS) for _ in range(40)]
            rows.append((" ".join(words[: rng.randint(5, 40)]).capitalize() + ".", label))
    return rows


def write_csv(path: Path, n: int, seed: int = 0) -> None:
    """The data file ingest reads (`text,label` with a header); every 1000th row is ragged (rejected)."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i, (text, label) in enumerate(make_rows(n, seed)):
            w.writerow([text, label, "extra"] if i % 1000 == 999 else [text, label])


def stage_argv(stage: str, d: Path) -> list[str]:
    """The stage's dvc.yaml path arguments, every path under the workspace `d`."""
    paths = {
        "ingest": {"out": "raw", "report": "ingest.json"},
        "clean": {"raw": "raw", "out": "interim", "report": "clean.json"},
        "tokenize": {"clean": "interim", "out": "tokenized", "report": "tokenize.json"},
        "label": {
            "tokenized": "tokenized",
            "out": "splits",
            "labels": "labels.json",
            "quarantine": "label_quarantine.jsonl",
            "ledger": "split_ledger.parquet",
            "report": "label.json",
        },
        "validate": {
            "splits": "splits",
            "labels": "labels.json",
            "profile": "profile.json",
            "report": "data_profile.json",
        },
    }[stage]
    return path_argv(stage, **{k: str(d / v) for k, v in paths.items()})


def run_stage(stage: str, d: Path, params: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run one stage as its own process; its wall seconds and peak RSS (MiB, from wait4)."""
    cmd = [sys.executable, "-m", f"stages.{stage}", "--params", str(params), *stage_argv(stage, d)]
    log = d / f"{stage}.log"
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(
            f"bench.data_scale: `stages.{stage}` failed (exit {proc.returncode}); {log}:\n{tail}"
        )
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def run_size(n: int, work: Path, env: dict[str, str], stages: list[str]) -> dict[str, Any]:
    """Generate `n` rows in work/n-<n> and run the stages on them in order."""
    d = work / f"n-{n}"
    d.mkdir(parents=True, exist_ok=True)
    data = d / "source.csv"
    write_csv(data, n)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"] |= {"source": str(data), "format": "auto", "max_rows": None}
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out: dict[str, Any] = {"rows": n, "source_mib": round(data.stat().st_size / 2**20, 1), "stages": {}}
    for stage in stages:
        out["stages"][stage] = run_stage(stage, d, d / "params.yaml", env)
        print(f"  {n:>9} {stage:<9} {out['stages'][stage]}", flush=True)
    timed = [out["stages"][s]["wall_s"] for s in TIMED if s in out["stages"]]
    out["ingest_to_label_s"] = round(sum(timed), 2)
    out["max_rss_mib"] = max(v["peak_rss_mib"] for v in out["stages"].values())
    return out


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of ys on xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return my - slope * mx, slope


def extrapolate(runs: list[dict[str, Any]], at: int) -> dict[str, Any]:
    """Each stage's peak RSS at `at` rows from a straight line through the measured sizes."""
    out: dict[str, Any] = {"rows": at, "stages": {}}
    for stage in runs[0]["stages"]:
        xs = [float(r["rows"]) for r in runs]
        ys = [r["stages"][stage]["peak_rss_mib"] for r in runs]
        a, b = fit_line(xs, ys)
        out["stages"][stage] = {
            "base_mib": round(a, 1),
            "kib_per_row": round(b * 1024, 3),
            "peak_rss_mib": round(a + b * at, 1),
        }
    out["max_rss_mib"] = max(v["peak_rss_mib"] for v in out["stages"].values())
    return out


def table(runs: list[dict[str, Any]], fit: dict[str, Any] | None) -> str:
    """A markdown table: one row per stage, wall s / peak RSS MiB per size (and the extrapolation)."""
    head = [f"{r['rows']:,} rows" for r in runs] + ([f"{fit['rows']:,} (fit)"] if fit else [])
    lines = ["| stage | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for stage in runs[0]["stages"]:
        cells = [
            f"{r['stages'][stage]['wall_s']} s / {r['stages'][stage]['peak_rss_mib']:.0f} MiB" for r in runs
        ]
        if fit:
            cells.append(f"{fit['stages'][stage]['peak_rss_mib']:.0f} MiB")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    totals = [f"{r['ingest_to_label_s']} s" for r in runs] + (["-"] if fit else [])
    lines.append("| ingest..label | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def summarise(runs: list[dict[str, Any]], ref_rows: int, at: int | None) -> dict[str, Any]:
    """The figures, the time ratio against the reference size and the verdict on both targets."""
    big = max(runs, key=lambda r: r["rows"])
    ref = next(r for r in runs if r["rows"] == ref_rows)
    ratio = round(big["ingest_to_label_s"] / max(ref["ingest_to_label_s"], 1e-9), 2)
    fit = extrapolate(runs, at) if at and len(runs) > 1 else None
    return {
        "runs": runs,
        "reference_rows": ref_rows,
        "time_ratio": {"rows": big["rows"], "vs": ref_rows, "ratio": ratio, "target": TIME_RATIO_TARGET},
        "rss_target_mib": RSS_TARGET_MIB,
        "rss_ok": big["max_rss_mib"] <= RSS_TARGET_MIB,
        "time_ok": ratio <= TIME_RATIO_TARGET,
        "extrapolated": fit,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000], help="sizes to run (rows)")
    ap.add_argument("--ref-rows", type=int, default=None, help="the reference size (default: largest / 8.5)")
    ap.add_argument("--extrapolate", type=int, default=None, metavar="N", help="fit RSS to N rows")
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--work", default=None, help="workspace (default: a temporary folder, removed after)")
    ap.add_argument("--out", default="bench/data_scale.json")
    a = ap.parse_args(argv)
    if list(a.stages) != [s for s in STAGES if s in a.stages] or a.stages[0] != "ingest":
        raise SystemExit("bench.data_scale: --stages must start at ingest and keep the DAG's order")
    ref_rows = a.ref_rows or round(max(a.rows) / 8.5)
    sizes = sorted({*a.rows, ref_rows})
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="ftpipe-data-scale-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    try:
        runs = [run_size(n, work.resolve(), env, list(a.stages)) for n in sizes]
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    result = summarise(runs, ref_rows, a.extrapolate)
    print(table(runs, result["extrapolated"]))
    tr = result["time_ratio"]
    print(f"ingest..label at {tr['rows']:,} rows: {tr['ratio']}x the time at {tr['vs']:,} (target <= 10x); "
          f"peak RSS {max(r['max_rss_mib'] for r in runs):.0f} MiB (target <= {RSS_TARGET_MIB})")  # fmt: skip
    out = ROOT / a.out
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
