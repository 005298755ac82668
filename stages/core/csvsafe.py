"""CSV cells that are safe to open in a spreadsheet (OWASP "CSV injection").

A spreadsheet reads a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula,
so a test text or an id such as `=HYPERLINK("http://...","click")` in `reports/worst_errors.csv` would
run when someone opens the report. `escape_frame` puts a single quote `'` before every such string cell
(numbers are left alone) and before a cell that already starts with `'`, so that `read_csv` can take
exactly one `'` off every string cell that starts with one and give back the values as they were: the
register stage reads ids and labels back from `reports/predictions.csv`. Only CSV files get this;
Parquet and JSONL keep every value as it is.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def escape_cell(value: object) -> object:
    """`'` + `value` when it is a string starting with a formula character or a quote; else `value`."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, QUOTE)):
        return QUOTE + value
    return value


def unescape_cell(value: object) -> object:
    """`escape_cell` undone: one leading `'` off a string."""
    if isinstance(value, str) and value.startswith(QUOTE):
        return value[1:]
    return value


def _text_columns(df: pd.DataFrame) -> list[Hashable]:
    return [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype)]


def escape_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` with every string cell escaped for a spreadsheet (write it with `to_csv`)."""
    out = df.copy()
    for col in _text_columns(out):
        out[col] = out[col].map(escape_cell)
    return out


def read_csv(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """`pandas.read_csv` of a file written from `escape_frame`, with its string cells unescaped."""
    df = pd.read_csv(path, **kwargs)
    for col in _text_columns(df):
        df[col] = df[col].map(unescape_cell)
    return df
