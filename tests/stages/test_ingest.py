"""ingest: every source format, and each bad-input case with its message."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from stages.clean import clean_table, clean_text
from stages.config.clean import CleanParams
from stages.config.ingest import IngestParams
from stages.ingest import IngestError, ingest, main


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


def test_single_file_ids_are_name_and_line(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("text,label\nhello,a\nworld,b\n")
    df, _, report = ingest(params(f))
    assert df["id"].tolist() == ["t.csv:2", "t.csv:3"] and df["source_file"].tolist() == ["t.csv"] * 2
    assert report["batches"] == {"t.csv": {"records": 2, "rows": 2, "rejected": 0, "cut_by_max_rows": 0}}


# --- hardening (issue 13): each test reproduces one way a whole file used to be lost or corrupted ---


def test_jsonl_nul_byte_in_one_row_keeps_the_file(tmp_path: Path) -> None:
    f = tmp_path / "news.jsonl"
    rows = [b'{"text": "first row", "label": "a"}', b'{"text": "nul\x00here", "label": "b"}']
    f.write_bytes(b"\n".join([*rows, b'{"text": "last row", "label": "a"}']) + b"\n")
    df, rejects, _ = ingest(params(f))
    assert df["text"].tolist() == ["first row", "nul\x00here", "last row"] and rejects == []
    assert clean_text("nul\x00here", CleanParams())[0] == "nulhere"  # clean strips it


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("utf16.jsonl", json.dumps({"text": "x" * 50, "label": "a"}).encode("utf-16")),
        ("packed.csv", gzip.compress(b"text,label\nhello,a\n")),
        ("zipped.csv", b"PK\x03\x04" + b"rest of a zip archive"),
    ],
)
def test_binary_file_by_signature_or_nul_share(tmp_path: Path, name: str, payload: bytes) -> None:
    f = tmp_path / name
    f.write_bytes(payload)
    with pytest.raises(IngestError, match=f"{name}: the extension says .* but the file is binary"):
        ingest(params(f))


def test_csv_cell_longer_than_csv_field_limit_is_read(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(f"text,label\nshort one,a\n{'y' * 200_000},b\nshort two,a\n")
    df, rejects, _ = ingest(params(f))
    assert [len(t) for t in df["text"]] == [9, 200_000, 9] and rejects == []
    _, clean_rejects, _ = clean_table(df, CleanParams(min_words=1, max_reject_fraction=1.0))
    assert [r["reason"] for r in clean_rejects] == ["too_long"]  # judged by clean.max_chars, like JSONL


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


# --- batches of files (issue 11) ---


def write_batch(path: Path, rows: list[tuple[str, str]]) -> None:
    """Write (text, label) rows in the format the file's extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=["text", "label"])
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
    else:
        frame.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")


def make_batches(root: Path) -> Path:
    """Three batch files of mixed formats, written out of order, plus files that must be ignored."""
    write_batch(root / "2026-03.parquet", [("march one", "b"), ("march two", "a")])
    write_batch(root / "2026-01.csv", [("january one", "a"), ("january two", "b")])
    write_batch(root / "2026-02.jsonl", [("february one", "a")])
    write_batch(root / ".hidden.csv", [("hidden", "a")])
    write_batch(root / "_partial.csv", [("partial", "a")])
    (root / "README.md").write_text("notes about the batches\n")
    return root


def test_batch_folder_mixed_formats_in_sorted_order(tmp_path: Path) -> None:
    df, rejects, report = ingest(params(make_batches(tmp_path / "batches")))
    assert df["id"].tolist() == [
        "2026-01.csv:2",
        "2026-01.csv:3",
        "2026-02.jsonl:1",
        "2026-03.parquet:1",
        "2026-03.parquet:2",
    ]
    assert df["text"].tolist()[0] == "january one" and df["text"].tolist()[-1] == "march two"
    assert df["source_line"].tolist() == [2, 3, 1, 1, 2] and rejects == []
    assert report["format"] == "batches" and report["skipped_files"] == ["README.md"]
    assert list(report["batches"]) == ["2026-01.csv", "2026-02.jsonl", "2026-03.parquet"]
    # the batch each row came from travels to validate, which profiles and checks every batch file
    assert df["batch"].tolist() == df["source_file"].tolist()


def test_appending_a_batch_keeps_existing_ids_and_rows(tmp_path: Path) -> None:
    src = make_batches(tmp_path / "batches")
    before, _, report_before = ingest(params(src))
    write_batch(src / "2026-04.tsv", [("april one", "a")])
    write_batch(src / "2026-01b.jsonl", [("late january", "b")])  # sorts between existing files
    after, _, report_after = ingest(params(src))
    old = after[~after["source_file"].isin(["2026-04.tsv", "2026-01b.jsonl"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, before)
    assert after["id"].tolist()[-1] == "2026-04.tsv:2"
    assert report_after["source_sha256"] != report_before["source_sha256"]


def test_glob_source(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_batch(root / "b.jsonl", [("bee", "a")])
    write_batch(root / "a.jsonl", [("ay", "b")])
    write_batch(root / "c.csv", [("sea", "a")])
    write_batch(root / "sub" / "d.jsonl", [("dee", "b")])
    write_batch(root / "_tmp" / "e.jsonl", [("ignored", "b")])
    df, _, report = ingest(params(root / "*.jsonl"))
    assert df["id"].tolist() == ["a.jsonl:1", "b.jsonl:1"] and report["format"] == "batches"
    df, _, _ = ingest(params(root / "**" / "*.jsonl"))
    assert df["id"].tolist() == ["a.jsonl:1", "b.jsonl:1", "sub/d.jsonl:1"]
    assert df["source_file"].tolist() == ["a.jsonl", "b.jsonl", "sub/d.jsonl"]


def test_empty_glob_and_empty_batch_folder_are_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not data\n")
    with pytest.raises(IngestError, match=r"glob `.*\*\.jsonl` matches no data file.*ingest.source"):
        ingest(params(tmp_path / "*.jsonl"))
    with pytest.raises(IngestError, match=r"no data file.*notes.txt"):
        ingest(params(tmp_path / "*.txt"))
    with pytest.raises(IngestError, match=r"no data file \(.csv, .jsonl.*\) and no class sub-folder"):
        ingest(params(tmp_path))
    with pytest.raises(IngestError, match="holds no data file"):
        ingest(params(tmp_path, format="batches"))


def test_folder_of_classes_is_told_from_batches(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for cls in ("pos", "neg"):
        (src / cls).mkdir(parents=True)
        (src / cls / "1.txt").write_text(f"a {cls} text")
    (src / ".git").mkdir()  # hidden folders count as neither kind
    (src / "LICENSE").write_text("not a data file")
    df, _, report = ingest(params(src))
    assert report["format"] == "folder" and df["source_file"].tolist() == ["neg/1.txt", "pos/1.txt"]
    assert report["batches"] == {"src": {"records": 2, "rows": 2, "rejected": 0, "cut_by_max_rows": 0}}
    write_batch(src / "extra.csv", [("stray", "a")])
    with pytest.raises(IngestError, match=r"both.*Set `ingest.format` to `folder` or `batches`"):
        ingest(params(src))
    assert ingest(params(src, format="folder"))[0]["source_file"].tolist() == ["neg/1.txt", "pos/1.txt"]
    assert ingest(params(src, format="batches"))[0]["id"].tolist() == ["extra.csv:2"]


def test_file_format_with_a_many_file_source_is_an_error(tmp_path: Path) -> None:
    make_batches(tmp_path)
    with pytest.raises(IngestError, match=r"`ingest.format` = csv reads one file.*`auto` or `batches`"):
        ingest(params(tmp_path / "*.csv", format="csv"))
    with pytest.raises(IngestError, match=r"`ingest.format` = batches needs a folder or a glob"):
        ingest(params(tmp_path / "2026-01.csv", format="batches"))


def test_duplicate_ids_across_batches_and_max_rows_after_concatenation(tmp_path: Path) -> None:
    src = tmp_path / "b"
    src.mkdir()
    (src / "1.csv").write_text("id,text,label\nx,one,a\ny,two,b\n")
    (src / "2.jsonl").write_text(
        '{"id": "x", "text": "again", "label": "a"}\n{"id": "z", "text": "t", "label": "a"}\n'
    )
    df, rejects, report = ingest(params(src, id_field="id"))
    assert df["id"].tolist() == ["y", "z"]
    assert sorted((r["source_file"], r["reason"]) for r in rejects) == [
        ("1.csv", "duplicate id `x`"),
        ("2.jsonl", "duplicate id `x`"),
    ]
    df, _, report = ingest(params(src, max_rows=3))
    assert df["id"].tolist() == ["1.csv:2", "1.csv:3", "2.jsonl:1"]
    assert report["batches"]["2.jsonl"] == {"records": 2, "rows": 1, "rejected": 0, "cut_by_max_rows": 1}


def test_main_reads_a_batch_folder(tmp_path: Path) -> None:
    src = make_batches(tmp_path / "batches")
    (tmp_path / "params.yaml").write_text(f"ingest:\n  source: {src}\n")
    out, report = tmp_path / "raw", tmp_path / "r.json"
    main(["--params", str(tmp_path / "params.yaml"), "--out", str(out), "--report", str(report)])
    assert pd.read_parquet(out / "rows.parquet")["source_file"].nunique() == 3
    assert json.loads(report.read_text())["batches"]["2026-02.jsonl"]["rows"] == 1
