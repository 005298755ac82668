"""ingest's readers: one file (CSV/TSV, JSONL, Parquet) or a class-per-folder tree into rows and rejects.

    res = read_csv(Path("data/external/tickets.csv"), IngestParams(), "tickets.csv")

Every record is counted and then kept (`res.rows`: id, text, label, source_file, source_line) or
rejected with its position and reason (`res.rejects`); a file that is not what its extension says raises
`IngestError`.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import pandas as pd

from stages.config.ingest import IngestParams
from stages.data.decode import SURROGATE, check_text_file, decode, redecode_cells, strip_bom
from stages.data.formats import csv_delimiter
from stages.data.label_sets import label_fields, read_label_set
from stages.data.sources import HIDDEN_PREFIXES, IngestError

RAW_EXCERPT = 200
# csv's own limit (131,072 chars) would stop a file at its first long cell; length is clean.max_chars's
# call. csv takes a C long, 32 bits on some platforms, hence the clip.
CSV_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


class RawRow(TypedDict):
    """One kept record: a row of data/raw (the batch name is added when the table is built)."""

    id: str
    text: str
    label: str | list[str]  # label.task multi_label: the sorted label set
    source_file: str
    source_line: int | None  # None: a whole file of a class-per-folder source


class Reject(TypedDict):
    """One rejected record: a line of rejects.jsonl."""

    source_file: str
    source_line: int | None
    reason: str
    raw: str | None  # the record's first RAW_EXCERPT characters


@dataclass
class IngestResult:
    """What one reader made of its input: `records` read, each now in `rows` or in `rejects`."""

    rows: list[RawRow] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    fallback_decoded: int = 0
    records: int = 0

    def reject(self, file: str, line: int | None, reason: str, raw: object = None) -> None:
        excerpt = None if raw is None else str(raw)[:RAW_EXCERPT]
        self.rejects.append({"source_file": file, "source_line": line, "reason": reason, "raw": excerpt})


def _coerce_label(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value)
    return None


def _read_label(rec: dict[str, object], p: IngestParams, multi: bool) -> tuple[str | list[str] | None, str]:
    """The record's label (multi_label: its label set), or None and why it is rejected."""
    if multi:
        labels, why = read_label_set(rec, p)
        return (labels or None), why
    label = _coerce_label(rec[p.label_field])
    return label, "" if label is not None else f"label `{p.label_field}` is not a string or integer"


def _add_record(
    res: IngestResult,
    rec: object,
    file: str,
    line: int,
    p: IngestParams,
    default_id: str,
    multi: bool = False,
) -> None:
    if not isinstance(rec, dict):
        res.reject(file, line, f"not an object (got {type(rec).__name__})", rec)
        return
    for key in (p.text_field, *label_fields(p, multi)):
        if key not in rec or rec[key] is None or (isinstance(rec[key], float) and pd.isna(rec[key])):
            res.reject(file, line, f"missing field `{key}`", rec)
            return
    text = rec[p.text_field]
    if not isinstance(text, str):
        res.reject(file, line, f"non-string text in `{p.text_field}` ({type(text).__name__})", rec)
        return
    if SURROGATE.search(text):
        res.reject(file, line, f"undecodable bytes (not {p.encoding})", text)
        return
    label, why = _read_label(rec, p, multi)
    if label is None:
        res.reject(file, line, why, rec)
        return
    row_id = default_id
    if p.id_field is not None:
        if rec.get(p.id_field) in (None, ""):
            res.reject(file, line, f"missing id field `{p.id_field}`", rec)
            return
        row_id = str(rec[p.id_field])
    res.rows.append({"id": row_id, "text": text, "label": label, "source_file": file, "source_line": line})


def read_csv(path: Path, p: IngestParams, name: str, multi: bool = False) -> IngestResult:
    """Read a CSV/TSV with a header row; ragged rows and rows no encoding decodes are rejected."""
    data = strip_bom(path.read_bytes())
    check_text_file(path, data, "csv")
    csv.field_size_limit(CSV_FIELD_LIMIT)
    text = data.decode(p.encoding, errors="surrogateescape")
    delimiter = csv_delimiter(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise IngestError(f"{path}: empty file, no header row. Add a header naming the columns.") from None
    missing = [k for k in (p.text_field, *label_fields(p, multi)) if k not in header]
    if missing:
        raise IngestError(
            f"{path}: the header has no column {', '.join(repr(m) for m in missing)} (columns: "
            f"{', '.join(header)}). Set `ingest.text_field` / `{_label_key(p, multi)}` to the right names."
        )
    res = IngestResult()
    start = reader.line_num + 1
    try:
        for row in reader:
            line = start
            start = reader.line_num + 1
            if row:
                _add_csv_row(res, header, row, name, line, p, multi)
    except csv.Error as exc:
        raise IngestError(f"{path}: line {reader.line_num}: not valid CSV ({exc}).") from None
    return res


def _label_key(p: IngestParams, multi: bool) -> str:
    """The param naming the label's columns, for an error message."""
    return "ingest.label_columns" if multi and p.label_columns is not None else "ingest.label_field"


def _add_csv_row(
    res: IngestResult, header: list[str], row: list[str], name: str, line: int, p: IngestParams, multi: bool
) -> None:
    """Count the record, then keep it or reject it with its reason."""
    res.records += 1
    if len(row) != len(header):
        res.reject(name, line, f"ragged row: {len(row)} fields, header has {len(header)}", row)
        return
    cells, used_fallback = redecode_cells(row, p)
    if cells is None:
        res.reject(name, line, f"undecodable bytes (not {p.encoding})", row)
        return
    res.fallback_decoded += used_fallback
    _add_record(res, dict(zip(header, cells, strict=True)), name, line, p, f"{name}:{line}", multi)


def read_jsonl(path: Path, p: IngestParams, name: str, multi: bool = False) -> IngestResult:
    """Read JSON Lines; a broken line, a non-object or a missing field is rejected with its line."""
    data = path.read_bytes()
    check_text_file(path, data, "jsonl")
    res = IngestResult()
    parsed = 0
    for i, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        res.records += 1
        text, used = decode(strip_bom(raw), p.encoding, p.fallback_encodings)
        if text is None:
            res.reject(name, i, f"undecodable bytes (not {p.encoding})", raw.decode("latin-1"))
            continue
        res.fallback_decoded += used != p.encoding
        try:
            # strict=False keeps control characters (a NUL, a raw tab) inside strings: clean strips them
            rec = json.loads(text, strict=False)
        except json.JSONDecodeError as exc:
            res.reject(name, i, f"broken JSON ({exc.msg} at column {exc.colno})", text)
            continue
        parsed += 1
        _add_record(res, rec, name, i, p, f"{name}:{i}", multi)
    if parsed == 0 and res.rejects:
        try:
            json.loads(data)
            hint = "it is one JSON document, not JSON Lines (one object per line)"
        except (json.JSONDecodeError, UnicodeDecodeError):
            hint = "no line of it is valid JSON"
        raise IngestError(f"{path}: the extension says JSONL but {hint}. Convert it or fix the extension.")
    return res


def read_parquet(path: Path, p: IngestParams, name: str, multi: bool = False) -> IngestResult:
    """Read a Parquet table; rows with missing or non-string text are rejected with their row number."""
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise IngestError(
            f"{path}: the extension says Parquet but it cannot be read as Parquet ({exc}). "
            "Fix the file or its extension."
        ) from None
    missing = [k for k in (p.text_field, *label_fields(p, multi)) if k not in df.columns]
    if missing:
        raise IngestError(
            f"{path}: no column {', '.join(repr(m) for m in missing)} (columns: "
            f"{', '.join(map(str, df.columns))}). Set `ingest.text_field` / `{_label_key(p, multi)}`."
        )
    res = IngestResult(records=len(df))
    for i, rec in enumerate(df.to_dict(orient="records"), start=1):
        _add_record(res, rec, name, i, p, f"{name}:{i}", multi)
    return res


def read_folder(root: Path, p: IngestParams, name: str) -> IngestResult:
    """Read one sub-folder per class, one text file per example; the sub-folder name is the label."""
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(HIDDEN_PREFIXES))
    if not classes:
        raise IngestError(
            f"{root}: a folder source needs one sub-folder per class holding text files; none found."
        )
    res = IngestResult()
    for cls in classes:
        for f in sorted(x for x in cls.rglob("*") if x.is_file() and not x.name.startswith(".")):
            res.records += 1
            rel = f.relative_to(root).as_posix()
            text, used = decode(f.read_bytes(), p.encoding, p.fallback_encodings)
            if text is None:
                res.reject(rel, None, f"undecodable bytes (not {p.encoding} nor {p.fallback_encodings})")
                continue
            if used != p.encoding:
                res.fallback_decoded += 1
            res.rows.append(
                {
                    "id": f"{name}/{rel}",
                    "text": text,
                    "label": cls.name,
                    "source_file": rel,
                    "source_line": None,
                }
            )
    return res


Reader = Callable[[Path, IngestParams, str, bool], IngestResult]  # the bool: label.task is multi_label
FILE_READERS: dict[str, Reader] = {"csv": read_csv, "jsonl": read_jsonl, "parquet": read_parquet}
