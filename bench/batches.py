"""Write the BBC News corpus as dated batch files, for the retraining walk-through in docs/new-data.md.

    python -m bench.batches --out data/external/batches --fractions 0.8 0.2 --seed 0
    python -m bench.batches --out data/external/batches --broken 2026-12.jsonl --truncate-chars 100 --rows 300

The first form shuffles the corpus (seeded) and writes `2026-10.jsonl`, `2026-11.jsonl`, ... holding
the given fractions of its rows, each row with its corpus id (`ingest.id_field: id`). The second writes
one broken batch, as a faulty export would: `--rows` articles drawn from the corpus, each cut to its
first `--truncate-chars` characters, under new ids.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pandas as pd

from stages.config.ingest import IngestParams
from stages.data.raw import ingest


def corpus() -> pd.DataFrame:
    """The BBC corpus through the real ingest code: id, text, label."""
    rows, _, _ = ingest(IngestParams(source="builtin:bbc-news"))
    return rows[["id", "text", "label"]]


def month_names(n: int, first: str = "2026-10") -> list[str]:
    year, month = (int(x) for x in first.split("-"))
    names = []
    for _ in range(n):
        names.append(f"{year:04d}-{month:02d}.jsonl")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return names


def split_batches(df: pd.DataFrame, fractions: list[float], seed: int) -> list[pd.DataFrame]:
    """Shuffle the rows (seeded) and cut them into consecutive parts of the given fractions."""
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise SystemExit(f"--fractions must sum to 1, got {sum(fractions)}")
    order = list(range(len(df)))
    random.Random(seed).shuffle(order)
    parts, start = [], 0
    for i, frac in enumerate(fractions):
        end = len(df) if i == len(fractions) - 1 else start + round(frac * len(df))
        parts.append(df.iloc[order[start:end]].reset_index(drop=True))
        start = end
    return parts


def broken_batch(df: pd.DataFrame, rows: int, chars: int, seed: int) -> pd.DataFrame:
    """`rows` articles cut to their first `chars` characters, under new ids (a faulty export)."""
    part = df.sample(n=rows, random_state=seed).reset_index(drop=True)
    return part.assign(id=[f"broken-{i}" for i in range(len(part))], text=part["text"].str[:chars])


def write_jsonl(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for rec in df.to_dict(orient="records"):
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.8, 0.2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--broken", help="write only this broken batch file (name inside --out)")
    ap.add_argument("--truncate-chars", type=int, default=100)
    ap.add_argument("--rows", type=int, default=300)
    args = ap.parse_args(argv)
    df = corpus()
    if args.broken:
        write_jsonl(broken_batch(df, args.rows, args.truncate_chars, args.seed), args.out / args.broken)
        print(f"{args.out / args.broken}: {args.rows} rows cut to {args.truncate_chars} characters")
        return
    for name, part in zip(
        month_names(len(args.fractions)), split_batches(df, args.fractions, args.seed), strict=True
    ):
        write_jsonl(part, args.out / name)
        print(f"{args.out / name}: {len(part)} rows")


if __name__ == "__main__":
    main()
