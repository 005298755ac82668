"""stages/data/sources.py: what `ingest.source` names (file, folder of batches or classes, glob), each
mistake with its message; read through the ingest core, as the stage reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.data.raw import IngestError, ingest
from stages.data.sources import Source, resolve_source
from tests.stages.data.ingest_files import make_batches, params, write_batch


def test_unknown_extension_and_missing_source(tmp_path: Path) -> None:
    f = tmp_path / "x.xml"
    f.write_text("<a/>")
    with pytest.raises(IngestError, match=r"extension `.xml`"):
        ingest(params(f))
    with pytest.raises(IngestError, match="does not exist.*data/external"):
        ingest(params(tmp_path / "nope.csv"))


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


def test_resolve_source_names_the_batch_files_in_order_and_the_skipped_ones(tmp_path: Path) -> None:
    src = make_batches(tmp_path / "batches")
    files = ("2026-01.csv", "2026-02.jsonl", "2026-03.parquet")
    assert resolve_source(str(src)) == Source("batches", src, "batches", files, ("README.md",))
    assert resolve_source(str(src / "2026-01.csv")) == Source("csv", src / "2026-01.csv", "2026-01.csv")
    assert resolve_source(str(src / "2026-01.csv"), "jsonl").fmt == "jsonl"  # ingest.format wins
