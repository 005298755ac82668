"""ingest's core: the configured source into one raw table (id, text, label, source position), its rejects
and its report.

    rows, rejects, report = ingest(IngestParams(source="data/external/tickets.csv"))

Batch files are read in sorted order of their relative paths; duplicate ids are rejected across all of
them, then `max_rows` keeps the first rows of the concatenation. Nothing is written here: the stage
(`python -m stages.ingest`) writes data/raw and reports/ingest.json.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TypedDict

import pandas as pd

from stages.config.ingest import IngestParams
from stages.data.formats import FILE_FORMATS
from stages.data.readers import FILE_READERS, IngestResult, Reject, read_folder
from stages.data.sources import IngestError, Source, resolve_source, source_digest

__all__ = ["Batch", "IngestError", "IngestReport", "IngestResult", "ingest", "read_source", "rows_frame"]


class IngestReport(TypedDict):
    """reports/ingest.json: the source, what was read from it, and where each record went."""

    source: str
    format: str
    source_sha256: str
    rows: int
    rejected: int
    reject_reasons: dict[str, int]
    decoded_with_fallback: int
    labels: dict[str, int]  # rows per label (multi_label: per label of the sets)
    batches: dict[str, dict[str, int]]  # batch name -> records, rows, rejected, cut_by_max_rows
    skipped_files: list[str]


@dataclass
class Batch:
    """One line of the report: a batch file, the single source file, or a whole class-per-folder tree."""

    name: str
    result: IngestResult
    cut_by_max_rows: int = 0


def read_source(src: Source, p: IngestParams, multi: bool = False) -> list[Batch]:
    """Read every file of the source, in order; a batch file's rows are named by its relative path.
    `multi` (label.task multi_label) reads a label set per row."""
    if src.fmt == "folder":
        if multi:
            raise IngestError(
                f"ingest.source: `{p.source}` is a class-per-folder tree, which gives each text one label, "
                "but label.task is multi_label. Put the texts and their label sets in a CSV, JSONL or Parquet "
                "file (a list cell, `ingest.label_separator` or `ingest.label_columns`), or set label.task "
                "to single_label."
            )
        return [Batch(src.name, read_folder(src.root, p, src.name))]
    if src.fmt != "batches":
        return [Batch(src.name, FILE_READERS[src.fmt](src.root, p, src.name, multi))]
    batches = []
    for rel in src.files:
        reader = FILE_READERS[FILE_FORMATS[PurePosixPath(rel).suffix.lower()]]
        batches.append(Batch(rel, reader(src.root / rel, p, rel, multi)))
    return batches


def check_task(p: IngestParams, task: str) -> None:
    """`ingest.label_separator` and `ingest.label_columns` read label sets: refuse them for one label."""
    used = [k for k in ("label_separator", "label_columns") if getattr(p, k) is not None]
    if used and task != "multi_label":
        raise IngestError(
            f"ingest.{used[0]} = {getattr(p, used[0])!r} reads a set of labels per text, but label.task is "
            f"{task}. Set label.task to multi_label, or set ingest.{used[0]} to null for one label per text."
        )


def label_counts(labels: pd.Series, multi: bool) -> dict[str, int]:
    """Rows per label, most first (multi_label: a row counts once for each label of its set)."""
    if not multi:
        return dict(Counter(labels).most_common())
    return dict(Counter(x for s in labels for x in s).most_common())


def reject_duplicate_ids(batches: list[Batch]) -> None:
    """Reject every row whose `ingest.id_field` value occurs more than once, across all batches."""
    seen = Counter(r["id"] for b in batches for r in b.result.rows)
    dup = {k for k, n in seen.items() if n > 1}
    for b in batches:
        kept = []
        for r in b.result.rows:
            if r["id"] in dup:
                b.result.reject(r["source_file"], r["source_line"], f"duplicate id `{r['id']}`", r["text"])
            else:
                kept.append(r)
        b.result.rows = kept


def cut_to_max_rows(batches: list[Batch], max_rows: int) -> None:
    """Keep the first `max_rows` rows of the concatenation; count what each batch lost."""
    left = max_rows
    for b in batches:
        kept = b.result.rows[:left]
        b.cut_by_max_rows = len(b.result.rows) - len(kept)
        b.result.rows = kept
        left -= len(kept)


def batch_counts(b: Batch) -> dict[str, int]:
    """Records read and where each went: records = rows + rejected + cut_by_max_rows."""
    res = b.result
    return {
        "records": res.records,
        "rows": len(res.rows),
        "rejected": len(res.rejects),
        "cut_by_max_rows": b.cut_by_max_rows,
    }


ROW_COLUMNS = ["id", "text", "label", "source_file", "source_line", "batch"]


def rows_frame(batches: list[Batch]) -> pd.DataFrame:
    """The kept rows of every batch as one table, built column by column: a second dict per row (the
    batch name added) cost a third of ingest's memory at a million rows."""
    columns: dict[str, list[object]] = {k: [] for k in ROW_COLUMNS}
    for b in batches:
        rows: Sequence[Mapping[str, object]] = b.result.rows
        for key in ROW_COLUMNS[:-1]:
            columns[key] += [r[key] for r in rows]
        columns["batch"] += [b.name] * len(b.result.rows)
    df = pd.DataFrame(columns, columns=ROW_COLUMNS)
    df["source_line"] = df["source_line"].astype("Int64")
    return df


def ingest(p: IngestParams, task: str = "single_label") -> tuple[pd.DataFrame, list[Reject], IngestReport]:
    """Read the source; return (rows, rejects, report). `task` is label.task: under multi_label each
    row's `label` is its sorted label set (a list of strings)."""
    check_task(p, task)
    multi = task == "multi_label"
    src = resolve_source(p.source, p.format)
    batches = read_source(src, p, multi)
    if p.id_field is not None:
        reject_duplicate_ids(batches)
    if p.max_rows is not None:
        cut_to_max_rows(batches, p.max_rows)
    rejects = [r for b in batches for r in b.result.rejects]
    if not any(b.result.rows for b in batches):
        raise IngestError(
            f"{p.source}: no usable row ({len(rejects)} rejected; first reason: "
            f"{rejects[0]['reason'] if rejects else 'the source is empty'})."
        )
    df = rows_frame(batches)
    report: IngestReport = {
        "source": p.source,
        "format": src.fmt,
        "source_sha256": source_digest(src),
        "rows": len(df),
        "rejected": len(rejects),
        "reject_reasons": dict(Counter(r["reason"] for r in rejects).most_common()),
        "decoded_with_fallback": sum(b.result.fallback_decoded for b in batches),
        "labels": label_counts(df["label"], multi),
        "batches": {b.name: batch_counts(b) for b in batches},
        "skipped_files": list(src.skipped),
    }
    return df, rejects, report
