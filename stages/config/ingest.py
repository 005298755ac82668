"""The `ingest` section of params.yaml: where the raw data is and how its rows are read."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.config.params import StageParams


class IngestParams(StageParams):
    """The `ingest` section of params.yaml."""

    source: str = Field(
        "builtin:bbc-news",
        min_length=1,
        description="a .csv/.tsv/.jsonl/.parquet file, a folder or glob of batch files "
        "(data/external/batches/*.jsonl), a class-per-folder directory, or builtin:bbc-news",
    )
    format: Literal["auto", "csv", "jsonl", "parquet", "folder", "batches"] = Field(
        "auto",
        description="auto (by extension; a folder with top-level data files is `batches`, one with "
        "sub-folders is `folder`) | csv | jsonl | parquet | folder | batches",
    )
    text_field: str = Field("text", min_length=1, description="column (or JSON key) holding the text")
    label_field: str = Field("label", min_length=1, description="column (or JSON key) holding the label")
    id_field: str | None = Field(
        None,
        description="column holding a stable row id; `file:line` when null (a new batch file renames no row)",
    )
    encoding: str = Field("utf-8", description="text encoding of the source files")
    fallback_encodings: list[str] = Field(
        default_factory=lambda: ["cp1252"],
        description="tried in order for a row (CSV row, JSONL line, class-folder file) that is not valid "
        "`encoding`; [] rejects such rows",
    )
    max_rows: int | None = Field(
        None, ge=1, description="debug knob: keep only the first N rows (of all batch files together)"
    )
