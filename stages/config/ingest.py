"""The `ingest` section of params.yaml: where the raw data is and how its rows are read."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

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
    label_separator: str | None = Field(
        None,
        min_length=1,
        description='label.task multi_label: split a string label cell on this, e.g. "|" '
        "(null: a label set must be a list in a JSON/Parquet cell)",
    )
    label_columns: list[str] | None = Field(
        None,
        min_length=1,
        description="label.task multi_label: several 0/1 columns, each a label named by its column "
        "(`label_field` is then unused); null reads `label_field`",
    )

    @model_validator(mode="after")
    def _label_sets(self) -> IngestParams:
        if self.label_separator is not None and self.label_columns is not None:
            raise ValueError(
                "`ingest.label_separator` and `ingest.label_columns` are two ways to read label sets; set one of them "
                "(a delimited string in `label_field`, or several 0/1 columns) and leave the other null"
            )
        if self.label_columns is not None and len(set(self.label_columns)) != len(self.label_columns):
            raise ValueError(
                f"`ingest.label_columns` names a column twice: {self.label_columns}; list each once"
            )
        return self
