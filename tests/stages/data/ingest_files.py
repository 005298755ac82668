"""The small sources the ingest tests read: params for one source, batch files in any format."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from stages.config.ingest import IngestParams


def params(source: Path | str, **kw: object) -> IngestParams:
    """The ingest section for one source (a path, a glob or builtin:...), the other keys as given."""
    return IngestParams(source=str(source), **kw)


def write_batch(path: Path, rows: list[tuple[str, str]]) -> None:
    """Write (text, label) rows in the format the file's extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=["text", "label"])
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
    else:
        frame.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")


def make_batches(root: Path) -> Path:
    """Three batch files of mixed formats, written out of order, plus files that must be ignored."""
    write_batch(root / "2026-03.parquet", [("march one", "b"), ("march two", "a")])
    write_batch(root / "2026-01.csv", [("january one", "a"), ("january two", "b")])
    write_batch(root / "2026-02.jsonl", [("february one", "a")])
    write_batch(root / ".hidden.csv", [("hidden", "a")])
    write_batch(root / "_partial.csv", [("partial", "a")])
    (root / "README.md").write_text("notes about the batches\n")
    return root
