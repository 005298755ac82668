"""The data file formats ftpipe reads, by extension: one table, so predict takes what ingest takes.

FILE_FORMATS[".tsv"] == "csv"; csv_delimiter("texts.tsv") == "\\t"
"""

from __future__ import annotations

from pathlib import PurePath

FILE_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
DATA_EXTENSIONS = ", ".join(sorted(FILE_FORMATS))


def csv_delimiter(path: str | PurePath) -> str:
    """A .tsv file is tab-separated; every other file read as CSV is comma-separated."""
    return "\t" if PurePath(path).suffix.lower() == ".tsv" else ","
