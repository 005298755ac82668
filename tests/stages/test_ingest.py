"""The ingest stage's entry point: params and paths in, data/raw and the report out (the reading itself is
tested in tests/stages/data/: test_sources, test_decode, test_readers, test_raw)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from stages.ingest import main
from tests.stages.data.ingest_files import make_batches


def test_main_writes_outputs_atomically(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("text,label\nhello world,a\n")
    (tmp_path / "params.yaml").write_text(f"ingest:\n  source: {src}\n")
    out = tmp_path / "raw"
    main(["--params", str(tmp_path / "params.yaml"), "--out", str(out), "--report", str(tmp_path / "r.json")])
    assert sorted(p.name for p in out.iterdir()) == ["rejects.jsonl", "rows.parquet"]
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".raw.tmp")]


def test_main_reads_a_batch_folder(tmp_path: Path) -> None:
    src = make_batches(tmp_path / "batches")
    (tmp_path / "params.yaml").write_text(f"ingest:\n  source: {src}\n")
    out, report = tmp_path / "raw", tmp_path / "r.json"
    main(["--params", str(tmp_path / "params.yaml"), "--out", str(out), "--report", str(report)])
    assert pd.read_parquet(out / "rows.parquet")["source_file"].nunique() == 3
    assert json.loads(report.read_text())["batches"]["2026-02.jsonl"]["rows"] == 1
