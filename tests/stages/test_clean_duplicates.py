"""Issue 22: exact duplicates are dropped and counted apart, never as rejects against max_reject_fraction."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stages.clean import main
from stages.config.clean import CleanParams
from stages.core.io import read_jsonl, write_table
from stages.data.cleaning import CleanError, clean_table
from stages.reports.clean import CleanReport

REPO = Path(__file__).resolve().parents[2]


def rows_with_copies(unique: int = 245, copies: int = 95, short: int = 0) -> pd.DataFrame:
    """`unique` distinct good texts, then `copies` exact copies of the first ones, then `short` too-short ones."""
    texts = [(f"story {i} about markets and trade", "business" if i % 2 else "tech") for i in range(unique)]
    texts += [texts[i % unique] for i in range(copies)]
    texts += [(f"hi {i}", "tech") for i in range(short)]
    return pd.DataFrame(
        [
            {"id": f"r{i}", "text": t, "label": lab, "source_file": "f.csv", "source_line": i}
            for i, (t, lab) in enumerate(texts)
        ]
    )


def test_a_file_with_28_percent_duplicates_and_nothing_bad_passes() -> None:
    """340 rows, 95 of them (27.9%) exact copies: clean used to fail on max_reject_fraction 0.2."""
    df = rows_with_copies()
    out, quarantine, report = clean_table(df, CleanParams())
    assert len(out) == 245 and out["text"].is_unique
    assert report["duplicates"] == 95 and report["duplicate_groups"] == 95
    assert report["rejected"] == 0 and report["reject_fraction"] == 0.0 and report["reject_reasons"] == {}
    # every row accounted for: kept, rejected, or quarantined as a duplicate of a kept row
    assert report["rows_in"] == report["rows_out"] + report["rejected"] + report["duplicates"] == 340
    assert [r["reason"] for r in quarantine] == ["duplicate"] * 95
    assert report["quarantined"] == len(quarantine) == 95


def test_real_rejects_still_count_and_name_their_reasons_not_duplicates() -> None:
    """Bad rows over the limit still fail, and the message counts only them (not the copies)."""
    df = rows_with_copies(unique=100, copies=50, short=30)  # 30 of 180 rejected: 16.7%
    out, quarantine, report = clean_table(df, CleanParams(max_reject_fraction=0.2))
    assert report["rejected"] == 30 and report["duplicates"] == 50 and len(quarantine) == 80
    assert report["reject_reasons"] == {"too_short": 30} and report["reject_fraction"] == round(30 / 180, 6)
    with pytest.raises(CleanError, match=r"rejected 30 of 180 rows \(16.7%\).*too_short \(30\)"):
        clean_table(df, CleanParams(max_reject_fraction=0.1))


def test_conflicting_copies_are_rejects_not_duplicates() -> None:
    """Copies that disagree on the label are bad data: rejected (all of them), counted in the fraction."""
    df = pd.DataFrame(
        [
            {"id": "a", "text": "same story told twice here", "label": "tech"},
            {"id": "b", "text": "same story told twice here", "label": "business"},
            {"id": "c", "text": "another story told once", "label": "tech"},
            {"id": "d", "text": "another story told once", "label": "tech"},
        ]
    )
    _, quarantine, report = clean_table(df, CleanParams(max_reject_fraction=1.0))
    assert report["rejected"] == 2 and report["reject_reasons"] == {"conflicting_labels": 2}
    assert report["duplicates"] == 1 and report["rows_out"] == 1
    assert sorted(r["reason"] for r in quarantine) == ["conflicting_labels"] * 2 + ["duplicate"]


def test_the_stage_writes_duplicates_to_its_report_and_quarantine(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_table(raw / "rows.parquet", rows_with_copies())
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(yaml.safe_load((REPO / "params.yaml").read_text())))
    out, report_path = tmp_path / "interim", tmp_path / "clean.json"
    main(["--params", str(params), "--raw", str(raw), "--out", str(out), "--report", str(report_path)])
    report = json.loads(report_path.read_text())
    typed = CleanReport.model_validate(report)
    assert typed.duplicates == 95 and typed.rejected == 0 and typed.rows_in == 340 and typed.rows_out == 245
    quarantine = read_jsonl(out / "rejects.jsonl")
    assert len(quarantine) == 95 and {r["reason"] for r in quarantine} == {"duplicate"}
    assert len(pd.read_parquet(out / "clean.parquet")) == 245
