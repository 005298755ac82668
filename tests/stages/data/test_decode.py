"""stages/data/decode.py: fallback encodings row by row, a BOM dropped, a binary file refused (issue 13: each
test reproduces one way a whole file used to be lost or corrupted); read through the ingest core."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from stages.config.clean import CleanParams
from stages.data.cleaning import clean_text
from stages.data.decode import decode, redecode_cells
from stages.data.raw import IngestError, ingest
from tests.stages.data.ingest_files import params


def test_binary_file_with_csv_extension_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "real.parquet"
    pd.DataFrame({"text": ["x"], "label": ["y"]}).to_parquet(src)
    fake = tmp_path / "fake.csv"
    fake.write_bytes(src.read_bytes())
    with pytest.raises(IngestError, match="fake.csv: the extension says CSV but the file is binary"):
        ingest(params(fake))


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("utf16.jsonl", json.dumps({"text": "x" * 50, "label": "a"}).encode("utf-16")),
        ("packed.csv", gzip.compress(b"text,label\nhello,a\n", mtime=0)),
        ("zipped.csv", b"PK\x03\x04" + b"rest of a zip archive"),
    ],
    # named by file: an id made of the bytes changed with gzip's timestamp, and pytest-xdist's workers
    # (collecting a second apart) then disagreed on the test list
    ids=["utf16.jsonl", "packed.csv", "zipped.csv"],
)
def test_binary_file_by_signature_or_nul_share(tmp_path: Path, name: str, payload: bytes) -> None:
    f = tmp_path / name
    f.write_bytes(payload)
    with pytest.raises(IngestError, match=f"{name}: the extension says .* but the file is binary"):
        ingest(params(f))


def test_csv_undecodable_byte_falls_back_for_that_row_only(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_bytes(
        "text,label\nCafé au lait,a\n".encode()
        + b"Caf\xe9 in cp1252,b\n"
        + "Ünïcödé row,a\n".encode()
        + b"good text,l\xe9bel\n"
    )
    df, rejects, report = ingest(params(f))
    assert df["text"].tolist() == ["Café au lait", "Café in cp1252", "Ünïcödé row", "good text"]
    assert df["label"].tolist() == ["a", "b", "a", "lébel"]
    assert rejects == [] and report["decoded_with_fallback"] == 2
    # no fallback: only the rows with undecodable bytes go, the label's included
    df, rejects, report = ingest(params(f, fallback_encodings=[]))
    assert df["text"].tolist() == ["Café au lait", "Ünïcödé row"]
    assert [(r["source_line"], r["reason"]) for r in rejects] == [
        (3, "undecodable bytes (not utf-8)"),
        (5, "undecodable bytes (not utf-8)"),
    ]


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_utf8_bom_is_stripped(tmp_path: Path, kind: str) -> None:
    f = tmp_path / f"t.{kind}"
    if kind == "csv":
        body = "id,text,label\n1,hello,a\n2,world,b\n"
    else:
        body = "".join(
            json.dumps({"id": i, "text": t, "label": "a"}) + "\n" for i, t in [(1, "hi"), (2, "yo")]
        )
    f.write_bytes(b"\xef\xbb\xbf" + body.encode())
    df, rejects, _ = ingest(params(f, id_field="id"))
    assert df["id"].tolist() == ["1", "2"] and rejects == []


def test_jsonl_nul_byte_in_one_row_keeps_the_file(tmp_path: Path) -> None:
    f = tmp_path / "news.jsonl"
    rows = [b'{"text": "first row", "label": "a"}', b'{"text": "nul\x00here", "label": "b"}']
    f.write_bytes(b"\n".join([*rows, b'{"text": "last row", "label": "a"}']) + b"\n")
    df, rejects, _ = ingest(params(f))
    assert df["text"].tolist() == ["first row", "nul\x00here", "last row"] and rejects == []
    assert clean_text("nul\x00here", CleanParams())[0] == "nulhere"  # clean strips it


def test_decode_tries_the_fallbacks_in_order_and_names_the_one_used() -> None:
    assert decode("Café".encode(), "utf-8", ["cp1252"]) == ("Café", "utf-8")
    assert decode(b"Caf\xe9", "utf-8", ["ascii", "cp1252"]) == ("Café", "cp1252")
    assert decode(b"Caf\xe9", "utf-8", []) == (None, None)


def test_redecode_cells_touches_only_a_row_with_undecodable_bytes() -> None:
    cells = b"Caf\xe9,ok".decode("utf-8", errors="surrogateescape").split(",")
    assert redecode_cells(["Café", "ok"], params("x.csv")) == (["Café", "ok"], False)
    assert redecode_cells(cells, params("x.csv")) == (["Café", "ok"], True)
    assert redecode_cells(cells, params("x.csv", fallback_encodings=[])) == (None, False)
