"""stages/data/raw.py: the ingest core: the builtin corpus, batches in order (issue 11), duplicate ids across
batches, max_rows after concatenation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stages.data.raw import ingest
from tests.stages.data.ingest_files import make_batches, params, write_batch


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


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("id,text,label\n1,aaa,x\n1,bbb,y\n2,ccc,x\n")
    df, rejects, _ = ingest(params(f, id_field="id"))
    assert df["id"].tolist() == ["2"] and {r["reason"] for r in rejects} == {"duplicate id `1`"}


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
