"""stages/data/readers.py: every file format, and each bad record or bad file with its message; read
through the ingest core, as the stage reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stages.config.clean import CleanParams
from stages.data.cleaning import clean_table
from stages.data.raw import IngestError, ingest
from tests.stages.data.ingest_files import params


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


def test_single_file_ids_are_name_and_line(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("text,label\nhello,a\nworld,b\n")
    df, _, report = ingest(params(f))
    assert df["id"].tolist() == ["t.csv:2", "t.csv:3"] and df["source_file"].tolist() == ["t.csv"] * 2
    assert report["batches"] == {"t.csv": {"records": 2, "rows": 2, "rejected": 0, "cut_by_max_rows": 0}}


def test_csv_cell_longer_than_csv_field_limit_is_read(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(f"text,label\nshort one,a\n{'y' * 200_000},b\nshort two,a\n")
    df, rejects, _ = ingest(params(f))
    assert [len(t) for t in df["text"]] == [9, 200_000, 9] and rejects == []
    _, clean_rejects, _ = clean_table(df, CleanParams(min_words=1, max_reject_fraction=1.0))
    assert [r["reason"] for r in clean_rejects] == ["too_long"]  # judged by clean.max_chars, like JSONL


def test_every_record_is_kept_or_rejected(tmp_path: Path) -> None:
    """kept + rejected = records, per file, with every kind of bad record in each format."""
    src = tmp_path / "batches"
    src.mkdir()
    (src / "a.csv").write_bytes(
        b"text,label\nok,a\nragged,a,x\n,b\nbad \xff byte \x81,a\nnul\x00cell,a\n"
        + b"z" * 140_000
        + b",b\nlast,a\n"
    )
    (src / "b.jsonl").write_bytes(
        b'{"text": "ok", "label": "a"}\n{"text": "broken\n\n[1]\n{"text": "n\x00l", "label": "a"}\n'
        b'{"text": 3, "label": "a"}\n{"label": "a"}\n\xef\xbb\xbf{"text": "bom mid-file", "label": "a"}\n'
    )
    pd.DataFrame({"text": ["ok", None, "x"], "label": ["a", "b", None]}).to_parquet(src / "c.parquet")
    df, rejects, report = ingest(params(src, fallback_encodings=["ascii"]))
    expected_records = {"a.csv": 7, "b.jsonl": 7, "c.parquet": 3}
    for name, n in expected_records.items():
        counts = report["batches"][name]
        assert counts["records"] == n and counts["rows"] + counts["rejected"] == n, (name, counts)
        assert counts["rows"] == (df["source_file"] == name).sum()
        assert counts["rejected"] == sum(r["source_file"] == name for r in rejects)
    assert report["rows"] + report["rejected"] == sum(expected_records.values())
