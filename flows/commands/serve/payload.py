"""What `/invocations` accepts: the request formats of `mlflow models serve`, read into texts, each checked.

    parse(b'{"dataframe_records": [{"text": "..."}], "params": {"probabilities": true}}', "application/json", 256)

JSON with exactly one of `dataframe_records`, `dataframe_split`, `instances` or `inputs` (a `text` column or
field, or plain strings), plus optional `params`; or CSV (`Content-Type: text/csv`) with a `text` column.
Anything else is a `BadRequest`: one line naming the row and the fix, answered 400.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from stages.serving.textclf import why_refused

FORMATS = ("dataframe_records", "dataframe_split", "instances", "inputs")
EXAMPLE = '{"dataframe_records": [{"text": "..."}]}'


class BadRequest(ValueError):
    """A request that cannot be answered as sent; the message is one line with the fix."""


@dataclass(frozen=True)
class Parsed:
    """A request's texts, in order, and whether it asked for every class's probability."""

    texts: list[str]
    probabilities: bool


def parse(body: bytes, content_type: str, max_rows: int) -> Parsed:
    """The texts and params of a request body; BadRequest naming the row and the fix."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        return _checked(_csv_texts(body), False, max_rows)
    if kind not in ("", "application/json"):
        raise BadRequest(
            f"Content-Type {kind!r} is not served; send application/json ({EXAMPLE}) or text/csv"
        )
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"the body is not UTF-8 (byte {exc.start}); send UTF-8 JSON such as {EXAMPLE}"
        ) from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); send {EXAMPLE}"
        ) from None
    if not isinstance(data, dict):
        raise BadRequest(f"the body is a JSON {type(data).__name__}, not an object; send {EXAMPLE}")
    found = [k for k in FORMATS if k in data]
    if len(found) != 1:
        said = f"has {', '.join(found)}" if found else f"has the keys {sorted(data)}"
        raise BadRequest(f"the body {said}; send exactly one of {', '.join(FORMATS)}, e.g. {EXAMPLE}")
    extra = sorted(set(data) - {found[0], "params"})
    if extra:
        raise BadRequest(f"unknown key(s) {extra} beside {found[0]}; send only {found[0]} and params")
    return _checked(_texts(found[0], data[found[0]]), _probabilities(data.get("params")), max_rows)


def _probabilities(params: Any) -> bool:
    if params is None:
        return False
    if not isinstance(params, dict):
        raise BadRequest('`params` is not an object; send e.g. "params": {"probabilities": true}')
    value = params.get("probabilities", False)  # other params are ignored, as mlflow models serve does
    if not isinstance(value, bool):
        raise BadRequest(f"params.probabilities is {value!r}; send true or false")
    return value


def _texts(fmt: str, value: Any) -> list[Any]:
    """The `text` values of one request format, in order (each checked later)."""
    if fmt == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list) or "data" not in value:
            raise BadRequest(
                'dataframe_split needs "columns" and "data": {"columns": ["text"], "data": [["..."]]}'
            )
        if "text" not in value["columns"]:
            raise BadRequest(f"dataframe_split's columns {value['columns']} have no `text`; add it")
        at, width = value["columns"].index("text"), len(value["columns"])
        if not isinstance(value["data"], list):
            raise BadRequest('dataframe_split\'s "data" is not a list of rows; send [["..."], ...]')
        out = []
        for i, row in enumerate(value["data"]):
            if not isinstance(row, list) or len(row) != width:
                raise BadRequest(
                    f"row {i}: dataframe_split's row is not a list of {width} value(s), one per column"
                )
            out.append(row[at])
        return out
    if isinstance(value, dict):  # columnar: {"text": [...]} or {"text": "..."}
        if "text" not in value:
            raise BadRequest(
                f"{fmt} has the fields {sorted(value)}, no `text`; send {{{fmt!r}: {{'text': [...]}}}}"
            )
        col = value["text"]
        return list(col) if isinstance(col, list) else [col]
    if not isinstance(value, list):
        raise BadRequest(f"{fmt} is a {type(value).__name__}; send a list of rows, e.g. {EXAMPLE}")
    out = []
    for i, row in enumerate(value):
        if isinstance(row, dict):
            if "text" not in row:
                raise BadRequest(f"row {i}: no `text` field (fields {sorted(row)}); every row needs one")
            out.append(row["text"])
        elif fmt == "dataframe_records":
            raise BadRequest(
                f'row {i}: a {type(row).__name__}, not an object; send {{"text": "..."}} per row'
            )
        else:  # instances / inputs of a one-column model: the texts themselves
            out.append(row)
    return out


def _csv_texts(body: bytes) -> list[Any]:
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - pandas raises many kinds; said in one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadRequest(
            f"the CSV body cannot be read ({first}); send a header line `text` and one row per text"
        ) from None
    if "text" not in frame.columns:
        raise BadRequest(f"the CSV has the columns {list(frame.columns)}, no `text`; add a `text` header")
    texts: list[Any] = frame["text"].tolist()
    return texts


def _checked(texts: list[Any], probabilities: bool, max_rows: int) -> Parsed:
    if len(texts) > max_rows:
        raise BadRequest(
            f"{len(texts)} rows is more than serve.max_rows = {max_rows}; send at most {max_rows} texts a request"
        )
    for i, text in enumerate(texts):
        why = why_refused(text)
        if why:
            raise BadRequest(f"row {i}: the text is {why}; every row needs a non-blank string in `text`")
    return Parsed([str(t) for t in texts], probabilities)
