"""predict's input side: the file's format, its rows in batches, its row count and its fingerprint.

    for batch in iter_batches("texts.csv", "id", "text", batch_size=256, encoding="utf-8"): ...

The formats are ingest's (stages/data/formats.py). A CSV is read in pandas chunks (a .tsv is
tab-separated), a JSONL file line by line, a Parquet file by record batches, so a file larger than
memory is fine. Every batch is a DataFrame of the id and text columns, ids as strings (a JSONL file
whose ids are numbers, then strings, gives one output schema). What cannot be read (no such
column, a byte the encoding does not decode, a ragged CSV row, a broken JSONL line, a file that is not
Parquet) raises `InputError` naming the file, the line or row and the fix; so does a text the model
cannot take (`check_texts`: empty, blank, missing, not a string). `scan_input` applies all of it to the
whole file in one streaming pass, which the command runs before it loads the model.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from stages.data.formats import FILE_FORMATS, csv_delimiter

if TYPE_CHECKING:  # imported where used: `ftpipe --help`, `check` and the rest do not pay for them
    import pandas as pd

FORMATS = FILE_FORMATS  # predict reads what ingest reads: one table, in stages/data/formats.py
FINGERPRINT_SPAN = 1 << 20  # bytes hashed at each end of the input
SCAN_ROWS = 8192  # rows per batch of the check before the model loads


class PredictError(ValueError):
    """Input, output or model that cannot be used; the message names the file, row or column and the fix.

    `exit_code` is the command's: 1 for a model or store that cannot be used, 2 for a bad input or output.
    """

    exit_code = 1


class InputError(PredictError):
    """An input or output file that cannot be used as it is (the command exits 2)."""

    exit_code = 2


def file_format(path: str | Path, formats: Mapping[str, str] = FORMATS) -> str:
    """csv | jsonl | parquet, from the file extension (an output passes the formats it can be written as)."""
    fmt = formats.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: unknown file type `{Path(path).suffix}`; use one of {', '.join(sorted(formats))}."
        )
    return fmt


def check_columns(path: str | Path, have: list[str], want: list[str], where: str = "") -> None:
    missing = [c for c in want if c not in have]
    if missing:
        raise InputError(
            f"{path}{where}: no column {', '.join(f'`{c}`' for c in missing)}; it has: "
            f"{', '.join(map(str, have)) or 'nothing'}. Name the columns with --id-column / --text-column."
        )


def check_texts(
    batch: pd.DataFrame, id_column: str, text_column: str, path: str | Path, first_row: int
) -> None:
    """Raise InputError naming the first row of `batch` whose text the model cannot take (empty, blank,
    missing, not a string: the served model's rule, `why_refused`); rows count from `first_row`."""
    from stages.serving.textclf import why_refused

    why = [why_refused(t) for t in batch[text_column]]
    bad = [i for i, w in enumerate(why) if w]
    if bad:
        row, ident = first_row + bad[0], batch[id_column].iloc[bad[0]]
        raise InputError(
            _refusal(
                path, row, id_column, ident, text_column, why[bad[0]], f"{len(bad)} such row(s) in this batch"
            )
        )


def scan_input(path: str | Path, id_column: str, text_column: str, encoding: str = "utf-8") -> int:
    """The whole input read once as the prediction will read it, every row and text checked, so that a
    bad one is refused before the model loads (one streaming pass: about a second per 100 MB of CSV);
    the number of rows. The refusal names the first bad text and counts them all."""
    from stages.serving.textclf import why_refused

    rows, bad, first = 0, 0, None
    for batch in iter_batches(path, id_column, text_column, SCAN_ROWS, encoding):
        for i, why in enumerate(why_refused(t) for t in batch[text_column]):
            if why:
                bad += 1
                first = first or (rows + i + 1, batch[id_column].iloc[i], why)
        rows += len(batch)
    if first is not None:
        row, ident, why = first
        raise InputError(
            _refusal(path, row, id_column, ident, text_column, why, f"{bad} such row(s) in the file")
        )
    return rows


def _refusal(
    path: str | Path, row: int, id_column: str, ident: object, text_column: str, why: str | None, count: str
) -> str:
    return (
        f"{path} row {row} ({id_column} = {ident!r}): `{text_column}` is {why} ({count}). "
        "Drop or fill those rows first."
    )


def id_text(value: object) -> str | None:
    """An id as a string, whatever type the file gave it (None stays None): 7 -> "7", 6.5 -> "6.5"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    return str(value)


def _frame(rows_id: list[object], rows_text: list[object], id_column: str, text_column: str) -> pd.DataFrame:
    import pandas as pd

    ids = pd.Series([id_text(v) for v in rows_id], dtype=object)
    return pd.DataFrame({id_column: ids, text_column: pd.Series(rows_text, dtype=object)})


def iter_batches(
    path: str | Path,
    id_column: str = "id",
    text_column: str = "text",
    batch_size: int = 256,
    encoding: str = "utf-8",
) -> Iterator[pd.DataFrame]:
    """Yield DataFrames of at most `batch_size` rows with the id and text columns, streaming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: input file not found.")
    fmt = file_format(path)
    if fmt == "parquet":
        yield from _parquet_batches(path, id_column, text_column, batch_size)
    elif fmt == "csv":
        yield from _csv_batches(path, id_column, text_column, batch_size, encoding)
    else:
        yield from _jsonl_batches(path, id_column, text_column, batch_size, encoding)


def _parquet_batches(path: Path, id_column: str, text_column: str, batch_size: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        check_columns(path, pf.schema_arrow.names, [id_column, text_column])
        ids: list[object] = []
        texts: list[object] = []
        # record batches stop at row-group ends: re-cut to exactly `batch_size` (a resume skips whole batches)
        for rb in pf.iter_batches(batch_size=batch_size, columns=[id_column, text_column]):
            ids += rb.column(0).to_pylist()
            texts += rb.column(1).to_pylist()
            while len(ids) >= batch_size:
                yield _frame(ids[:batch_size], texts[:batch_size], id_column, text_column)
                ids, texts = ids[batch_size:], texts[batch_size:]
        if ids:
            yield _frame(ids, texts, id_column, text_column)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot be read as Parquet ({exc}). Check the file is complete.") from None


def _csv_batches(
    path: Path, id_column: str, text_column: str, batch_size: int, encoding: str
) -> Iterator[pd.DataFrame]:
    import pandas as pd

    if not _has_content(path):
        return  # 0 bytes or blank lines only: no header, no rows (pandas raises EmptyDataError)
    sep = csv_delimiter(path)
    try:
        header = pd.read_csv(path, nrows=0, sep=sep, encoding=encoding).columns
        check_columns(path, list(header), [id_column, text_column])
        # every column read (no usecols): with usecols pandas cuts a row with unquoted commas silently
        chunks = pd.read_csv(
            path,
            sep=sep,
            chunksize=batch_size,
            dtype=str,
            keep_default_na=False,
            encoding=encoding,
        )
        for chunk in chunks:
            yield _frame(chunk[id_column].tolist(), chunk[text_column].tolist(), id_column, text_column)
    except UnicodeDecodeError:
        raise undecodable(path, encoding) from None
    except pd.errors.ParserError as exc:
        raise InputError(
            f"{path}: not valid CSV ({str(exc).strip()}). Fix that line (quote a text holding commas)."
        ) from None


def _has_content(path: Path) -> bool:
    with open(path, "rb") as fh:
        return any(line.strip() for line in fh)


def _jsonl_batches(
    path: Path, id_column: str, text_column: str, batch_size: int, encoding: str
) -> Iterator[pd.DataFrame]:
    ids: list[object] = []
    texts: list[object] = []
    with open(path, "rb") as fh:  # decoded line by line, so a bad byte is named by its line
        for lineno, raw in enumerate(fh, 1):
            obj = _json_line(path, lineno, raw, encoding)
            if obj is None:
                continue
            check_columns(path, list(obj), [id_column, text_column], f" line {lineno}")
            ids.append(obj[id_column])
            texts.append(obj[text_column])
            if len(ids) == batch_size:
                yield _frame(ids, texts, id_column, text_column)
                ids, texts = [], []
    if ids:
        yield _frame(ids, texts, id_column, text_column)


def _json_line(path: Path, lineno: int, raw: bytes, encoding: str) -> dict[str, object] | None:
    """Line `lineno` as a JSON object, or None for a blank line."""
    try:
        line = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(_undecodable_text(path, lineno, raw, exc, encoding)) from None
    line = line.removeprefix("\ufeff") if lineno == 1 else line
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise InputError(f"{path} line {lineno}: not valid JSON ({exc}). Fix or remove the line.") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path} line {lineno}: expected a JSON object, got {type(obj).__name__}.")
    return obj


def undecodable(path: Path, encoding: str) -> InputError:
    """The error for a file with a byte `encoding` cannot decode, naming its first such line."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as exc:
                return InputError(_undecodable_text(path, lineno, raw, exc, encoding))
    return InputError(f"{path}: not readable as {encoding}. Re-save it as UTF-8 or pass its --encoding.")


def _undecodable_text(path: Path, lineno: int, raw: bytes, exc: UnicodeDecodeError, encoding: str) -> str:
    byte = raw[exc.start : exc.start + 1].hex()
    return (
        f"{path} line {lineno}: byte 0x{byte} at column {exc.start + 1} is not {encoding}. Re-save the file "
        "as UTF-8, or name its encoding: --encoding cp1252 (Windows), --encoding latin-1."
    )


def count_rows(path: str | Path, encoding: str = "utf-8") -> int | None:
    """Rows in the input, for the progress bar's total: Parquet from its metadata; CSV by a streaming pass of
    the csv module (a quoted text may span lines, blank lines are skipped, as pandas does); JSONL by its
    non-blank lines. None where the file cannot be read (the batches then say why)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fmt = file_format(path)
    try:
        if fmt == "parquet":
            return int(pq.ParquetFile(path).metadata.num_rows)
        with open(path, encoding=encoding, errors="replace", newline="") as fh:
            if fmt == "csv":
                rows = csv.reader(fh, delimiter=csv_delimiter(path))
                return max(0, sum(1 for row in rows if row) - 1)  # less the header
            return sum(1 for line in fh if line.strip())
    except (OSError, csv.Error, pa.ArrowException, LookupError):
        return None


def fingerprint(path: str | Path) -> dict[str, int | str]:
    """What identifies the input for a resume: its size, mtime and the sha256 of its first and last MiB.

    Not a hash of the whole file: that costs a second or more a GB on every start (the command's own
    overhead is held near 5 s). Size and mtime change with any ordinary edit, and the two ends catch a
    same-size rewrite or a copy that kept the mtime (`cp -p`) of a different file.
    """
    path = Path(path)
    st = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(FINGERPRINT_SPAN))
        if st.st_size > FINGERPRINT_SPAN:
            fh.seek(max(FINGERPRINT_SPAN, st.st_size - FINGERPRINT_SPAN))
            digest.update(fh.read(FINGERPRINT_SPAN))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ends_sha256": digest.hexdigest()}
