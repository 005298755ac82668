"""CSV cells escaped for spreadsheets (OWASP CSV injection) and read back unchanged."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from stages.core.csvsafe import escape_cell, escape_frame, read_csv, unescape_cell


def test_formula_cells_get_a_quote_and_other_values_stay() -> None:
    for cell in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx", "'x"):
        assert escape_cell(cell) == "'" + cell and unescape_cell(escape_cell(cell)) == cell
    for value in ("plain", " =not first", "", -1.5, 3, None):
        assert escape_cell(value) == value
    assert math.isnan(escape_cell(float("nan")))


def test_a_frame_round_trips_through_a_csv_file(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {"id": ['=HYPERLINK("x")', "-7", "'q", "a"], "n": [-1, 2, 3, 4], "x": [-0.5, 1.0, 2.0, 3.0]}
    )
    escape_frame(df).to_csv(tmp_path / "t.csv", index=False)
    assert (tmp_path / "t.csv").read_text().splitlines()[1:3] == [
        '"\'=HYPERLINK(""x"")",-1,-0.5',
        "'-7,2,1.0",
    ]
    pd.testing.assert_frame_equal(read_csv(tmp_path / "t.csv", dtype={"id": str}), df, check_dtype=False)
    assert df["id"].iloc[0] == '=HYPERLINK("x")'  # the frame itself is left alone
