"""stages/data/formats.py: the one table of data file formats, and the delimiter a .tsv file needs."""

from __future__ import annotations

from pathlib import Path

from stages.data import readers, sources
from stages.data.formats import DATA_EXTENSIONS, FILE_FORMATS, csv_delimiter


def test_every_format_has_a_reader_and_the_message_lists_every_extension() -> None:
    assert set(FILE_FORMATS.values()) == set(readers.FILE_READERS)
    assert DATA_EXTENSIONS == ".csv, .jsonl, .ndjson, .parquet, .pq, .tsv"
    assert sources.FILE_FORMATS is FILE_FORMATS  # resolve_source reads the same table


def test_a_tsv_file_is_tab_separated_whatever_the_case() -> None:
    assert csv_delimiter("texts.tsv") == csv_delimiter(Path("TEXTS.TSV")) == "\t"
    assert csv_delimiter("texts.csv") == csv_delimiter("no_extension") == ","
