"""ingest: every source format, and each bad-input case with its message."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stages.ingest import IngestError, IngestParams, ingest, main


def params(source: Path | str, **kw: object) -> IngestParams:
    return IngestParams(source=str(source), **kw)


def test_builtin_bbc_news_reads_all_articles() -> None:
    df, rejects, report = ingest(params("builtin:bbc-news"))
    assert len(df) == 2225 and rejects == []
    assert report["labels"] == {
        "business": 510,
        "sports": 511,
        "politics": 417,
        "tech": 401,
        "entertainment": 386,
    }
    assert report["decoded_with_fallback"] == 1  # one latin-1 article (sports/199.txt)
    assert df["id"].is_unique and df["id"].iloc[0].startswith("bbc-news/")


def test_csv_rows_with_positions_and_rejects(tmp_path: Path) -> None:
    f = tmp_path / "news.csv"
    f.write_bytes(b'text,label\n"multi\nline text",a\nfine text,b\nragged,a,extra\n,b\nbad \xff byte,a\n')
    df, rejects, report = ingest(params(f, fallback_encodings=[]))
    # the empty text on line 6 is kept: clean rejects it as `empty` with the other cleaning rules
    assert df["text"].tolist() == ["multi\nline text", "fine text", ""]
    assert df["source_line"].tolist() == [2, 4, 6]
    reasons = {r["source_line"]: r["reason"] for r in rejects}
    assert reasons[5].startswith("ragged row: 3 fields, header has 2")
    assert "undecodable" in reasons[7]
    assert report["rejected"] == 2


def test_csv_empty_text_is_kept_for_clean_to_judge(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("text,label\n,b\nok text,a\n")
    df, rejects, _ = ingest(params(f))
    assert df["text"].tolist() == ["", "ok text"] and rejects == []


def test_csv_missing_column_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("body,label\nx,a\n")
    with pytest.raises(IngestError, match=r"t.csv: the header has no column 'text'.*ingest.text_field"):
        ingest(params(f))


def test_jsonl_rejects_broken_lines_and_bad_fields(tmp_path: Path) -> None:
    f = tmp_path / "news.jsonl"
    lines = [
        json.dumps({"text": "good one", "label": "a", "uid": 1}),
        '{"text": "broken", ',
        json.dumps({"label": "a", "uid": 3}),
        json.dumps({"text": 42, "label": "a", "uid": 4}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"text": "int label", "label": 3, "uid": 6}),
    ]
    f.write_text("\n".join(lines) + "\n")
    df, rejects, _ = ingest(params(f, id_field="uid"))
    assert df["id"].tolist() == ["1", "6"] and df["label"].tolist() == ["a", "3"]
    by_line = {r["source_line"]: r["reason"] for r in rejects}
    assert by_line[2].startswith("broken JSON")
    assert by_line[3] == "missing field `text`"
    assert by_line[4].startswith("non-string text")
    assert by_line[5].startswith("not an object")


def test_jsonl_that_is_one_json_document_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "data.jsonl"
    f.write_text(json.dumps([{"text": "a", "label": "b"}], indent=2))
    with pytest.raises(IngestError, match="one JSON document, not JSON Lines"):
        ingest(params(f))


def test_binary_file_with_csv_extension_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "real.parquet"
    pd.DataFrame({"text": ["x"], "label": ["y"]}).to_parquet(src)
    fake = tmp_path / "fake.csv"
    fake.write_bytes(src.read_bytes())
    with pytest.raises(IngestError, match="fake.csv: the extension says CSV but the file is binary"):
        ingest(params(fake))


def test_parquet_and_not_parquet(tmp_path: Path) -> None:
    f = tmp_path / "t.parquet"
    pd.DataFrame({"text": ["hello there", None, "x"], "label": ["a", "b", None]}).to_parquet(f)
    df, rejects, _ = ingest(params(f))
    assert df["text"].tolist() == ["hello there"]
    assert [r["reason"] for r in rejects] == ["missing field `text`", "missing field `label`"]
    bad = tmp_path / "bad.parquet"
    bad.write_text("text,label\n")
    with pytest.raises(IngestError, match="bad.parquet: the extension says Parquet but it cannot be read"):
        ingest(params(bad))


def test_folder_source_and_undecodable_file(tmp_path: Path) -> None:
    for cls, body in [("pos", b"great film"), ("neg", b"dull film"), ("neg", b"\xff\xfe\x00bad")]:
        d = tmp_path / "src" / cls
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{len(list(d.iterdir()))}.txt").write_bytes(body)
    df, rejects, _ = ingest(params(tmp_path / "src", fallback_encodings=[]))
    assert sorted(df["label"]) == ["neg", "pos"]
    assert (
        len(rejects) == 1
        and "undecodable" in rejects[0]["reason"]
        and rejects[0]["source_file"] == "neg/1.txt"
    )


def test_unknown_extension_and_missing_source(tmp_path: Path) -> None:
    f = tmp_path / "x.xml"
    f.write_text("<a/>")
    with pytest.raises(IngestError, match=r"extension `.xml`"):
        ingest(params(f))
    with pytest.raises(IngestError, match="does not exist.*data/external"):
        ingest(params(tmp_path / "nope.csv"))


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("id,text,label\n1,aaa,x\n1,bbb,y\n2,ccc,x\n")
    df, rejects, _ = ingest(params(f, id_field="id"))
    assert df["id"].tolist() == ["2"] and {r["reason"] for r in rejects} == {"duplicate id `1`"}


def test_main_writes_outputs_atomically(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("text,label\nhello world,a\n")
    (tmp_path / "params.yaml").write_text(f"ingest:\n  source: {src}\n")
    out = tmp_path / "raw"
    main(["--params", str(tmp_path / "params.yaml"), "--out", str(out), "--report", str(tmp_path / "r.json")])
    assert sorted(p.name for p in out.iterdir()) == ["rejects.jsonl", "rows.parquet"]
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".raw.tmp")]
